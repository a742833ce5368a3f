"""engine serve through its real clients: the openai package (float, base64, dimensions, token ids), httpx for TEI's
/embed, every bad-input answer, fairness between a huge and a tiny request, and a client that disconnects.

One server for the module (a subprocess started as a user starts it); vectors are checked against Embedder.encode.
"""
from __future__ import annotations

import base64
import select
import socket
import time
from urllib.parse import urlsplit

import httpx
import numpy as np
import orjson
import pytest

from serve_helpers import Server, cos_min

MAX_BYTES = 4 * 2**20
MAX_INPUTS = 3000
MIN_COS = 0.99999


@pytest.fixture(scope="module")
def server(minilm_export, tmp_path_factory):
    # a small batch budget keeps scheduling rounds short (4 batches), so the fairness test runs quickly
    s = Server(tmp_path_factory.mktemp("serve") / "server.log", "--model", str(minilm_export), "--max-batch-tokens", "1024",
               "--max-inputs", str(MAX_INPUTS), "--max-request-bytes", str(MAX_BYTES))
    yield s
    assert s.stop() == 0, s.log


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=server.url + "/v1", api_key="no-key-set", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def texts(real_texts):
    """Real paragraphs of varied length, one over max length (256 tokens), and an empty string."""
    return real_texts[:10] + [" ".join(real_texts[40:80]), ""]


def post(server, route: str, body, **kw) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.post(server.url + route, content=content, headers={"content-type": "application/json"}, timeout=120, **kw)


def test_ready_line_health_models(server, minilm_export):
    assert server.device == "cpu" and "CPUExecutionProvider" in server.providers
    assert server.model == minilm_export.name
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}
    models = httpx.get(server.url + "/v1/models").json()
    assert [m["id"] for m in models["data"]] == [minilm_export.name]


def test_openai_float_equals_encode(server, client, embedder, texts):
    resp = client.embeddings.create(model=server.model, input=texts, encoding_format="float")
    assert [d.index for d in resp.data] == list(range(len(texts)))
    got = np.array([d.embedding for d in resp.data])
    assert got.shape == (len(texts), embedder.dim)
    assert cos_min(got, embedder.encode(texts)) >= MIN_COS
    assert resp.model == server.model
    tokens = sum(len(e.ids) for e in embedder.rust_tokenizer.encode_batch(texts))  # truncated at 256, specials counted
    assert resp.usage.prompt_tokens == resp.usage.total_tokens == tokens


def test_openai_base64(server, client, embedder, texts):
    ref = embedder.encode(texts)
    raw = client.embeddings.create(model=server.model, input=texts, encoding_format="base64")
    decoded = np.stack([np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in raw.data])
    assert cos_min(decoded, ref) >= MIN_COS
    default = client.embeddings.create(model=server.model, input=texts)  # the client asks for base64 and decodes it
    assert cos_min([d.embedding for d in default.data], ref) >= MIN_COS


def test_token_id_inputs(server, client, embedder, texts):
    ids = [e.ids for e in embedder.rust_tokenizer.encode_batch(texts[:5])]
    many = client.embeddings.create(model=server.model, input=ids, encoding_format="float")
    assert cos_min([d.embedding for d in many.data], embedder.encode(texts[:5])) >= MIN_COS
    one = client.embeddings.create(model=server.model, input=ids[0], encoding_format="float")
    assert len(one.data) == 1 and cos_min([one.data[0].embedding], embedder.encode(texts[:1])) >= MIN_COS


def test_dimensions_equal_sentence_transformers_truncate_dim(server, client, minilm_path, texts):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(minilm_path), device="cpu")
    want = st.encode(texts, truncate_dim=64, normalize_embeddings=True)
    got = np.array([d.embedding for d in client.embeddings.create(model=server.model, input=texts, dimensions=64,
                                                                  encoding_format="float").data])
    assert got.shape == (len(texts), 64)
    assert cos_min(got, want) >= MIN_COS
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    tei = np.array(post(server, "/embed", {"inputs": texts, "dimensions": 64}).json())
    assert cos_min(tei, want) >= MIN_COS


def test_tei_embed(server, embedder, texts):
    r = post(server, "/embed", {"inputs": texts})
    assert r.status_code == 200
    assert cos_min(r.json(), embedder.encode(texts)) >= MIN_COS
    single = post(server, "/embed", {"inputs": texts[0], "normalize": False, "truncate": True})
    assert np.asarray(single.json()).shape == (1, embedder.dim)


def test_tei_truncate_false_is_413_with_token_count(server, embedder, texts):
    long_text = texts[10]
    tok = embedder.rust_tokenizer
    tok.no_truncation()
    try:
        full = len(tok.encode(long_text).ids)
    finally:
        tok.enable_truncation(max_length=embedder.max_length)
    assert full > embedder.max_length
    r = post(server, "/embed", {"inputs": ["short", long_text], "truncate": False})
    assert r.status_code == 413
    assert "inputs[1]" in r.json()["error"] and f"{full} tokens" in r.json()["error"]
    assert post(server, "/embed", {"inputs": ["short", long_text]}).status_code == 200  # truncated by default


# (route, body, status, text the message must contain, OpenAI's param)
BAD = [
    ("/v1/embeddings", {"input": []}, 400, "empty array", "input"),
    ("/v1/embeddings", {"input": ["a", 3]}, 400, "input[1]", "input[1]"),
    ("/v1/embeddings", {"input": ["a", None]}, 400, "input[1]", "input[1]"),
    ("/v1/embeddings", {"input": {"text": "a"}}, 400, "input", "input"),
    ("/v1/embeddings", {"model": "m"}, 400, "input is required", "input"),
    ("/v1/embeddings", b'{"input": ["a",', 400, "not valid JSON", None),
    ("/v1/embeddings", b"[1, 2]", 400, "JSON object", None),
    ("/v1/embeddings", {"input": "a", "encoding_format": "fp16"}, 400, "encoding_format", "encoding_format"),
    ("/v1/embeddings", {"input": "a", "dimensions": "64"}, 400, "dimensions", "dimensions"),
    ("/v1/embeddings", {"input": "a", "dimensions": 0}, 400, "1..384", "dimensions"),
    ("/v1/embeddings", {"input": "a", "dimensions": 385}, 400, "1..384", "dimensions"),
    ("/v1/embeddings", {"input": [[101, 99999999]]}, 400, "input[0][1]", "input[0][1]"),
    ("/v1/embeddings", {"input": [[101, 102], []]}, 400, "input[1]", "input[1]"),
    # ids without the model's [CLS] ... [SEP]: another tokenizer's (tiktoken's, from LangChain's default settings)
    ("/v1/embeddings", {"input": [[15339, 1917]]}, 400, "check_embedding_ctx_length=False", "input[0]"),
    ("/v1/embeddings", {"input": [101, 7592, 2088]}, 400, "does not start with [101] and end with [102]", "input"),
    ("/v1/embeddings", {"input": "a", "model": 7}, 400, "model", "model"),
    ("/embed", {"inputs": []}, 422, "empty array", None),
    ("/embed", {"inputs": ["a", 1.5]}, 422, "inputs[1]", None),
    ("/embed", {"inputs": "a", "normalize": "yes"}, 422, "normalize", None),
    ("/embed", {"inputs": "a", "prompt_name": "query"}, 422, "prompt_name", None),
    ("/embed", b"not json", 400, "not valid JSON", None),
    ("/embed", {"inputs": "a", "dimensions": 1000}, 400, "1..384", None),
]


@pytest.mark.parametrize("route,body,status,text,param", BAD, ids=[f"{r}-{i}" for i, (r, *_rest) in enumerate(BAD)])
def test_bad_input_names_the_field(server, route, body, status, text, param):
    r = post(server, route, body)
    assert r.status_code == status, r.text
    err = r.json()
    if route == "/embed":
        assert set(err) == {"error", "error_type"} and text in err["error"]
    else:
        assert set(err["error"]) == {"message", "type", "param", "code"}
        assert text in err["error"]["message"] and err["error"]["param"] == param


def test_openai_client_raises_bad_request(server, client):
    import openai

    with pytest.raises(openai.BadRequestError, match="dimensions"):
        client.embeddings.create(model=server.model, input="a", dimensions=10_000)


def test_payload_too_large_and_too_many_inputs(server):
    big = {"input": ["x" * 1024] * (MAX_BYTES // 1024 + 10)}  # over the byte limit (and the input limit)
    for route in ("/v1/embeddings", "/embed"):
        body = big if route == "/v1/embeddings" else {"inputs": big["input"]}
        r = post(server, route, body)
        assert r.status_code == 413 and "--max-request-bytes" in r.text
    r = post(server, "/v1/embeddings", {"input": ["a"] * (MAX_INPUTS + 1)})
    assert r.status_code == 413 and r.json()["error"]["param"] == "input" and str(MAX_INPUTS) in r.json()["error"]["message"]
    assert post(server, "/v1/embeddings", {"input": "still serving"}).status_code == 200


def _raw_post(url: str, route: str, body: dict) -> socket.socket:
    """Send a request on a plain socket (so the test can hang up on it) and return the socket unread."""
    parts = urlsplit(url)
    data = orjson.dumps(body)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    sock.sendall(f"POST {route} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    return sock


def _wait_for(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_small_request_overtakes_huge_one_then_huge_client_disconnects(server, real_texts):
    """A 1-text request answers while a 3,000-text request is still running; then the big client hangs up, its
    queued texts are dropped and the server keeps serving."""
    huge = (real_texts * 2)[:MAX_INPUTS]
    cancelled, dropped = server.metric("engine_cancelled_requests_total"), server.metric("engine_dropped_sequences_total")
    big = _raw_post(server.url, "/v1/embeddings", {"input": huge})
    try:
        _wait_for(lambda: server.metric("engine_queue_requests") >= 1, "the big request to be queued")
        small = post(server, "/v1/embeddings", {"input": "a one-text request"})
        assert small.status_code == 200 and len(small.json()["data"]) == 1
        ready, _, _ = select.select([big], [], [], 0)
        sent = big.recv(1 << 16) if ready else b""  # at most its heartbeat: 200 headers and spaces (--heartbeat-s)
        assert b'"data"' not in sent, "the big request answered before the small one: no overtaking was shown"
        assert server.metric("engine_queue_requests") >= 1  # the big one still has texts waiting
    finally:
        big.close()
    _wait_for(lambda: server.metric("engine_cancelled_requests_total") == cancelled + 1, "the disconnect to be noticed")
    assert server.metric("engine_dropped_sequences_total") > dropped
    _wait_for(lambda: server.metric("engine_queue_tokens") == 0, "the queue to empty")
    assert post(server, "/embed", {"inputs": "after the disconnect"}).status_code == 200


def test_metrics(server):
    text = httpx.get(server.url + "/metrics").text
    assert server.metric("engine_requests_total", route="/v1/embeddings", status="200") > 0
    assert server.metric("engine_requests_total", route="/embed", status="422") > 0
    assert server.metric("engine_input_tokens_total", route="/v1/embeddings") > 0
    for name in ("engine_batch_sequences_bucket", "engine_batch_padded_tokens_bucket", "engine_queue_seconds_bucket",
                 "engine_inference_seconds_bucket", "engine_queue_requests", "engine_queue_tokens", "engine_json_seconds_count"):
        assert name in text
    assert server.metric("engine_batch_padded_tokens_sum") >= server.metric("engine_batch_real_tokens_total") > 0
