"""engine serve with an API key and a small queue: 401s, 429 with Retry-After, 413 for a request larger than the
queue, open /health and /metrics, and SIGTERM finishing the in-flight request before exiting 0."""
from __future__ import annotations

import signal
import threading
import time

import httpx
import numpy as np
import pytest

from serve_helpers import Server

KEY = "s3cret-key"
QUEUE = 6000  # --max-queued-tokens


@pytest.fixture(scope="module")
def server(minilm_export, tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("serve-limits") / "server.log", "--model", str(minilm_export),
               "--max-queued-tokens", str(QUEUE), "--max-batch-tokens", "1024", env={"ENGINE_API_KEY": KEY})
    yield s
    s.stop()


def auth(key: str = KEY) -> dict:
    return {"Authorization": f"Bearer {key}"}


def texts_of_tokens(embedder, real_texts, low: int, high: int) -> list[str]:
    """Real paragraphs, in order, until their (truncated) tokens reach at least low and stay under high."""
    out, total = [], 0
    for text, enc in zip(real_texts, embedder.rust_tokenizer.encode_batch(real_texts)):
        if total >= low:
            break
        if total + len(enc.ids) < high:
            out.append(text)
            total += len(enc.ids)
    assert low <= total < high
    return out


def _wait_for(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_api_key(server):
    import openai

    url = server.url
    for headers in ({}, auth("wrong"), {"Authorization": KEY}, auth(KEY + "x")):
        r = httpx.post(url + "/v1/embeddings", json={"input": "a"}, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["code"] == "invalid_api_key"
    assert httpx.post(url + "/embed", json={"inputs": "a"}).status_code == 401
    assert httpx.get(url + "/v1/models").status_code == 401
    assert httpx.get(url + "/v1/models", headers=auth()).status_code == 200
    assert httpx.get(url + "/health").status_code == 200 and httpx.get(url + "/metrics").status_code == 200
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0).embeddings.create(model="m", input="a")
    ok = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0).embeddings.create(model="m", input="a")
    assert len(ok.data[0].embedding) == 384


def test_request_larger_than_the_queue_is_413(server, embedder, real_texts):
    texts = texts_of_tokens(embedder, real_texts, QUEUE + 1, QUEUE + 2000)
    r = httpx.post(server.url + "/v1/embeddings", json={"input": texts}, headers=auth(), timeout=60)
    assert r.status_code == 413 and "--max-queued-tokens" in r.json()["error"]["message"]


def test_queue_full_is_429_with_retry_after(server, embedder, real_texts):
    """The first request fills ~95% of the queue, the second needs ~85% of it: refused until the first has drained
    most of its tokens, a window of most of the first request's run time."""
    first = texts_of_tokens(embedder, real_texts, QUEUE - 400, QUEUE - 200)
    second = texts_of_tokens(embedder, real_texts[len(first):], QUEUE - 1000, QUEUE - 800)
    answers = {}
    worker = threading.Thread(target=lambda: answers.update(first=httpx.post(
        server.url + "/v1/embeddings", json={"input": first}, headers=auth(), timeout=120)))
    worker.start()
    try:
        _wait_for(lambda: server.metric("engine_queue_tokens") > 0, "the first request to be admitted")
        r = httpx.post(server.url + "/v1/embeddings", json={"input": second}, headers=auth(), timeout=60)
    finally:
        worker.join(120)
    assert r.status_code == 429, r.text
    assert int(r.headers["retry-after"]) >= 1 and r.json()["error"]["code"] == "queue_full"
    assert answers["first"].status_code == 200 and len(answers["first"].json()["data"]) == len(first)
    assert httpx.post(server.url + "/v1/embeddings", json={"input": "after"}, headers=auth()).status_code == 200


def test_sigterm_finishes_in_flight_then_exits_0(server, embedder, real_texts):
    texts = texts_of_tokens(embedder, real_texts, QUEUE - 1000, QUEUE - 500)
    answers = {}
    worker = threading.Thread(target=lambda: answers.update(r=httpx.post(
        server.url + "/v1/embeddings", json={"input": texts}, headers=auth(), timeout=120)))
    worker.start()
    _wait_for(lambda: server.metric("engine_queue_tokens") > 0, "the request to be admitted")
    server.proc.send_signal(signal.SIGTERM)
    worker.join(120)
    assert server.proc.wait(60) == 0, server.log
    r = answers["r"]
    assert r.status_code == 200
    got = np.array([d["embedding"] for d in r.json()["data"]])
    assert got.shape == (len(texts), embedder.dim)
    got, ref = got[:10], embedder.encode(texts[:10])
    assert float((got * ref).sum(1).min()) >= 0.99999
    assert "stopped after finishing in-flight requests" in server.log
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/health", timeout=5)
