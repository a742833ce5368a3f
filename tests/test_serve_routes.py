"""engine serve's TEI and infinity route sets, raw over httpx against one subprocess: POST / and /invocations (the
model's task), /info, /tokenize, /decode, /embed_all, /similarity, /embeddings and /models without /v1,
/v1/models/{id}, JSON 404 / 405 bodies in each path's API shape, and the heartbeat that keeps a long answer's client
reading. The 424 of /embed_all on an export without token outputs runs in-process over the fake backend."""
from __future__ import annotations

import time

import httpx
import numpy as np
import orjson
import pytest
from serve_helpers import Server, cos_min

MIN_COS = 0.99999
HEARTBEAT = 0.2  # --heartbeat-s: small, so a request of a few seconds shows it


@pytest.fixture(scope="module")
def server(minilm_export, tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("serve-routes") / "server.log", "--model", str(minilm_export),
               "--heartbeat-s", str(HEARTBEAT))
    yield s
    assert s.stop() == 0, s.log


@pytest.fixture(scope="module")
def texts(real_texts):
    return real_texts[:8] + [" ".join(real_texts[40:80]), "naïve café — 東京 ✓"]


def post(server, route: str, body) -> httpx.Response:
    return httpx.post(server.url + route, content=orjson.dumps(body), headers={"content-type": "application/json"},
                      timeout=120)


def test_root_and_invocations_are_embed(server, embedder, texts):
    want = embedder.encode(texts)
    for route in ("/", "/invocations", "/embed"):
        r = post(server, route, {"inputs": texts})
        assert r.status_code == 200 and cos_min(r.json(), want) >= MIN_COS
    assert httpx.get(server.url + "/").json() == {"status": "ok"} == httpx.get(server.url + "/ping").json()


def test_info(server, embedder):
    info = httpx.get(server.url + "/info").json()
    assert info["model_id"] == info["served_model_name"] == server.model
    assert info["model_type"] == {"embedding": {"pooling": "mean"}} and info["model_dtype"] == "float32"
    assert info["max_input_length"] == embedder.max_length == 256
    assert info["max_batch_tokens"] == embedder.max_batch_tokens and info["max_client_batch_size"] == 2048
    assert info["max_batch_requests"] is None and info["tokenization_workers"] == 2 and info["auto_truncate"] is True
    assert info["max_concurrent_requests"] == 2**19 // 256 and info["embedding_dim"] == 384
    assert isinstance(info["version"], str) and "model_sha" in info and "sha" in info and "docker_label" in info


def test_tokenize_and_decode(server, embedder, texts):
    tok = embedder.rust_tokenizer
    got = post(server, "/tokenize", {"inputs": texts}).json()
    for text, tokens, enc in zip(texts, got, tok.encode_batch(texts)):
        assert [t["id"] for t in tokens] == enc.ids
        assert tokens[0] == {"id": 101, "text": "[CLS]", "special": True, "start": None, "stop": None}
        raw = text.encode()
        for t in tokens[1:-1]:  # TEI's offsets are UTF-8 byte offsets; text is the slice of the input
            assert raw[t["start"]:t["stop"]].decode() == t["text"] and t["special"] is False
    bare = post(server, "/tokenize", {"inputs": "hello world", "add_special_tokens": False}).json()
    assert [t["text"] for t in bare[0]] == ["hello", "world"] and bare[0][0]["start"] == 0
    ids = [t["id"] for t in got[0]]
    assert post(server, "/decode", {"ids": ids}).json() == [tok.decode(ids)]
    both = post(server, "/decode", {"ids": [ids, [101, 7592, 102]], "skip_special_tokens": False}).json()
    assert both[1] == "[CLS] hello [SEP]"
    r = post(server, "/decode", {"ids": [101, 99999999]})
    assert r.status_code == 422 and "ids[1]" in r.json()["error"]


def test_embed_all_is_token_embeddings(server, embedder, texts):
    want = embedder.encode(texts, output_value="token_embeddings")
    got = post(server, "/embed_all", {"inputs": texts}).json()
    assert len(got) == len(texts)
    for g, w in zip(got, want):
        assert np.asarray(g).shape == w.shape and cos_min(g, w) >= MIN_COS


def test_similarity(server, embedder, texts):
    got = post(server, "/similarity", {"inputs": {"source_sentence": texts[0], "sentences": texts[1:5]}}).json()
    v = embedder.encode(texts[:5])
    assert np.allclose(got, v[1:] @ v[0], atol=1e-5)


def test_infinity_paths(server, embedder, texts):
    r = post(server, "/embeddings", {"input": texts[:3], "model": "default/not-specified", "dimensions": 0,
                                     "modality": "text", "encoding_format": "float"})
    assert r.status_code == 200 and cos_min([d["embedding"] for d in r.json()["data"]], embedder.encode(texts[:3])) >= MIN_COS
    assert len(post(server, "/embeddings", {"input": "x", "output_dimension": 32}).json()["data"][0]["embedding"]) == 32
    image = post(server, "/embeddings", {"input": "x", "modality": "image"})
    assert image.status_code == 400 and image.json()["error"]["param"] == "modality"
    listed = httpx.get(server.url + "/models").json()["data"][0]
    assert listed["id"] == server.model and "owned_by" not in listed  # infinity's client accepts only "infinity" there
    assert set(listed["stats"]) >= {"queue_fraction", "queue_absolute", "results_pending"}
    assert httpx.get(server.url + "/v1/models").json()["data"][0]["owned_by"] == "embedding-engine"
    one = httpx.get(server.url + f"/v1/models/{server.model}").json()
    assert one["id"] == server.model and one["object"] == "model"


# (method, path, status, family)
UNKNOWN = [("GET", "/nope", 404, "tei"), ("POST", "/embed/x", 404, "tei"), ("GET", "/v1/nope", 404, "openai"),
           ("GET", "/v1/models/no-such-model", 404, "openai"), ("GET", "/models/no-such-model", 404, "openai"),
           ("GET", "/embed", 405, "tei"), ("PUT", "/info", 405, "tei"), ("GET", "/v1/embeddings", 405, "openai"),
           ("DELETE", "/embeddings", 405, "openai"), ("POST", "/models", 405, "openai"), ("POST", "/health", 405, "tei")]


@pytest.mark.parametrize("method,path,status,family", UNKNOWN, ids=[f"{m}{p}" for m, p, *_ in UNKNOWN])
def test_unknown_routes_and_methods_answer_json(server, method, path, status, family):
    r = httpx.request(method, server.url + path, timeout=30)
    assert r.status_code == status and r.headers["content-type"] == "application/json"
    body = r.json()
    if family == "tei":
        assert set(body) == {"error", "error_type"} and path in body["error"]
    else:
        assert set(body["error"]) == {"message", "type", "param", "code"}
    if status == 405:
        assert r.headers["allow"]


def test_heartbeat_keeps_a_short_read_timeout_waiting(server, embedder, real_texts):
    """A request that runs for seconds, read with a read timeout of a fraction of that (chroma's httpx client has
    5 s): the server sends its 200 headers and a space every --heartbeat-s, then the body, which parses as usual."""
    texts = (real_texts * 2)[:800]
    started = time.perf_counter()
    with httpx.stream("POST", server.url + "/embed", content=orjson.dumps({"inputs": texts}),
                      headers={"content-type": "application/json"}, timeout=httpx.Timeout(60, read=4 * HEARTBEAT)) as r:
        headers_at = time.perf_counter() - started
        body = r.read()
    took = time.perf_counter() - started
    assert r.status_code == 200 and took > 4 * HEARTBEAT, f"the request took {took:.2f} s: too quick to show a heartbeat"
    assert headers_at < took / 2 and body[:1] == b" "
    assert cos_min(orjson.loads(body), embedder.encode(texts)) >= MIN_COS


def test_embed_all_without_token_outputs_is_424():
    """In-process, over the fake backend: an export without token_embeddings answers /embed_all with TEI's 424."""
    from fakes import fake_embedder, fake_manifest
    from starlette.testclient import TestClient

    from engine.serve.app import build_app
    from engine.serve.batcher import Batcher
    from engine.serve.config import ServeConfig
    from engine.serve.metrics import Metrics
    from engine.serve.schemas import Limits
    from engine.serve.state import ServerState

    emb = fake_embedder(manifest=fake_manifest(token_embeddings=False))
    metrics = Metrics()
    batcher = Batcher(emb, metrics, 10_000, 0, 2 * emb.max_batch_tokens)
    batcher.start()
    state = ServerState(cfg=ServeConfig(), embedder=emb, batcher=batcher, metrics=metrics,
                        limits=Limits(max_inputs=8, vocab_size=200, dim=4, prefix=(2,), suffix=(3,)), ready=True)
    with TestClient(build_app(state)) as client:
        r = client.post("/embed_all", json={"inputs": ["the a"]})
        assert r.status_code == 424 and r.json()["error_type"] == "Backend" and "--token-embeddings" in r.json()["error"]
        assert client.post("/", json={"inputs": ["the a"]}).status_code == 200  # the pooled head is still served


def test_a_failure_after_the_heartbeat_started_closes_the_connection():
    """In-process uvicorn over a slow fake backend that fails on one token: once the heartbeat sent 200 headers, a
    failure cannot become a status, so the connection closes without the body's end (the client raises instead of
    reading a 200), and the server goes on serving."""
    import socket
    import threading

    import uvicorn
    from fakes import FakeBackend, fake_embedder

    from engine.serve.app import build_app
    from engine.serve.batcher import Batcher
    from engine.serve.config import ServeConfig
    from engine.serve.metrics import Metrics
    from engine.serve.schemas import Limits
    from engine.serve.state import ServerState

    class Slow(FakeBackend):
        def run(self, batch, outputs):
            time.sleep(0.3)  # longer than the heartbeat
            return super().run(batch, outputs)

    emb = fake_embedder(Slow(fail_on_token=7))  # 7: "of"
    metrics = Metrics()
    batcher = Batcher(emb, metrics, 10_000, 0, 2 * emb.max_batch_tokens)
    batcher.start()
    state = ServerState(cfg=ServeConfig(heartbeat_s=0.1), embedder=emb, batcher=batcher, metrics=metrics,
                        limits=Limits(max_inputs=8, vocab_size=200, dim=4, prefix=(2,), suffix=(3,)), ready=True)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    server = uvicorn.Server(uvicorn.Config(build_app(state), log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        ok = httpx.post(url + "/embed", json={"inputs": ["the an"]}, timeout=10)
        assert ok.status_code == 200 and ok.content.startswith(b" ")  # a heartbeat, then the vectors
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(url + "/embed", json={"inputs": ["the of"]}, timeout=10)
        assert httpx.post(url + "/embed", json={"inputs": ["the an"]}, timeout=10).status_code == 200
    finally:
        server.should_exit = True
        thread.join(10)
        batcher.stop()
