"""engine serve with a reranker (issue 25): TEI's /rerank, Cohere's / Jina's /v1/rerank and /v2/rerank, through the
real clients (the cohere SDK's ClientV2, haystack's HuggingFaceTEIRanker, litellm.rerank with the cohere/ provider),
scores equal Reranker.predict and sentence-transformers' CrossEncoder.predict; bad inputs get 4xx naming the field;
the wrong task is refused naming the model's task; 32 concurrent clients all get their answers."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from serve_helpers import Server

QUERY = "how do plants make energy from sunlight"
DOCS = ["Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
        "The stock market fell sharply on Tuesday.",
        "Chlorophyll absorbs red and blue light in the leaves of plants.",
        "A recipe for a quick tomato soup.",
        "Solar panels convert sunlight into electricity."]
TOL = 1e-4


@pytest.fixture(scope="module")
def server(tiny_rerankers, tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("serve-rerank") / "server.log", "--model", str(tiny_rerankers["bert"]),
               "--max-inputs", "64")
    yield s
    assert s.stop() == 0, s.log


@pytest.fixture(scope="module")
def reranker(tiny_rerankers):
    from engine import Reranker

    return Reranker(tiny_rerankers["bert"], device="cpu")


@pytest.fixture(scope="module")
def want(reranker):
    return np.asarray(reranker.predict([(QUERY, d) for d in DOCS]), dtype=np.float64)


@pytest.fixture(autouse=True)
def _offline_clients(monkeypatch):
    monkeypatch.setenv("HAYSTACK_TELEMETRY_ENABLED", "False")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _check_ranking(results, want, key, top_n=None):
    order = list(np.argsort(-want, kind="stable"))[:top_n]
    assert [r["index"] for r in results] == order
    got = np.asarray([r[key] for r in results])
    assert np.abs(got - want[order]).max() <= TOL


def test_scores_equal_sentence_transformers(tiny_cross_encoders, want):
    from sentence_transformers import CrossEncoder

    st = CrossEncoder(str(tiny_cross_encoders["bert"]), device="cpu").predict([(QUERY, d) for d in DOCS])
    assert np.abs(np.asarray(st, dtype=np.float64) - want).max() <= TOL


def test_tei_rerank(server, want, reranker):
    r = httpx.post(server.url + "/rerank", json={"query": QUERY, "texts": DOCS}, timeout=30)
    assert r.status_code == 200, r.text
    _check_ranking(r.json(), want, "score")
    assert all("text" not in x for x in r.json())
    r = httpx.post(server.url + "/rerank", json={"query": QUERY, "texts": DOCS, "return_text": True, "raw_scores": True,
                                                 "truncation_direction": "Right"}, timeout=30)
    raw = reranker.activate(reranker.score_pairs([(QUERY, d) for d in DOCS]), raw=True).reshape(-1).astype(np.float64)
    _check_ranking(r.json(), raw, "score")
    assert [x["text"] for x in r.json()] == [DOCS[x["index"]] for x in r.json()]
    same = httpx.post(server.url + "/", json={"query": QUERY, "texts": DOCS}, timeout=30)  # TEI's task route
    _check_ranking(same.json(), want, "score")


def test_cohere_sdk(server, want):
    import cohere

    client = cohere.ClientV2(base_url=server.url, api_key="unused")
    got = client.rerank(model=server.model, query=QUERY, documents=DOCS)
    _check_ranking([{"index": r.index, "relevance_score": r.relevance_score} for r in got.results], want,
                   "relevance_score")
    top = client.rerank(model=server.model, query=QUERY, documents=DOCS, top_n=2)
    assert len(top.results) == 2 and top.id


def test_cohere_v1_and_jina_shape(server, want):
    docs = [{"text": d} for d in DOCS]
    for path in ("/v1/rerank", "/v2/rerank"):
        r = httpx.post(server.url + path, json={"model": "any", "query": QUERY, "documents": docs, "top_n": 3,
                                                "return_documents": True}, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        _check_ranking(body["results"], want, "relevance_score", top_n=3)
        assert [x["document"]["text"] for x in body["results"]] == [DOCS[x["index"]] for x in body["results"]]
        assert body["usage"]["total_tokens"] > 0 and body["meta"]["api_version"]["version"] == "2"


def test_haystack_tei_ranker(server, want):
    from haystack import Document
    from haystack_integrations.components.rankers.huggingface_api import HuggingFaceTEIRanker

    ranker = HuggingFaceTEIRanker(url=server.url, top_k=3)
    docs = ranker.run(query=QUERY, documents=[Document(content=d) for d in DOCS])["documents"]
    order = list(np.argsort(-want, kind="stable"))[:3]
    assert [d.content for d in docs] == [DOCS[i] for i in order]
    assert np.abs(np.asarray([d.score for d in docs]) - want[order]).max() <= TOL


def test_litellm_cohere_provider(server, want):
    """litellm's cohere/ provider posts to api_base + /v1/rerank (return_documents true by default)."""
    import litellm

    got = litellm.rerank(model=f"cohere/{server.model}", query=QUERY, documents=DOCS, top_n=4, api_base=server.url,
                         api_key="unused")
    results = [{"index": r["index"], "relevance_score": r["relevance_score"]} for r in got.results]
    _check_ranking(results, want, "relevance_score", top_n=4)


def test_info_and_metrics(server, reranker):
    info = httpx.get(server.url + "/info", timeout=10).json()
    assert info["task"] == "rerank" and info["num_labels"] == 1 and info["activation"] == reranker.activation
    assert info["max_length"] == reranker.max_length and "reranker" in info["model_type"]
    listed = httpx.get(server.url + "/models", timeout=10).json()["data"][0]  # infinity's listing: what the model does
    assert listed["capabilities"] == ["rerank"] and listed["backend"] == reranker.backend_choice.name
    before = server.metric("engine_rerank_pairs_total", route="/rerank")
    httpx.post(server.url + "/rerank", json={"query": QUERY, "texts": DOCS[:2]}, timeout=30).raise_for_status()
    assert server.metric("engine_rerank_pairs_total", route="/rerank") == before + 2
    assert server.metric("engine_requests_total", route="/rerank", status="200") >= 1


BAD = [
    ("/rerank", {"texts": DOCS}, 422, "query"),
    ("/rerank", {"query": QUERY, "texts": []}, 422, "texts"),
    ("/rerank", {"query": QUERY}, 422, "texts"),
    ("/rerank", {"query": 3, "texts": DOCS}, 422, "query"),
    ("/rerank", {"query": QUERY, "texts": ["a", 2]}, 422, "texts[1]"),
    ("/rerank", {"query": QUERY, "texts": DOCS, "raw_scores": "yes"}, 422, "raw_scores"),
    ("/rerank", {"query": QUERY, "texts": DOCS, "truncation_direction": "Left"}, 422, "truncation_direction"),
    ("/rerank", {"query": QUERY, "texts": ["word " * 400], "truncate": False}, 413, "texts[0]"),
    ("/rerank", {"query": QUERY, "texts": ["x"] * 65}, 413, "texts"),
    ("/v1/rerank", {"query": QUERY, "documents": []}, 400, "documents"),
    ("/v1/rerank", {"documents": DOCS}, 400, "query"),
    ("/v1/rerank", {"query": QUERY, "documents": DOCS, "top_n": 0}, 400, "top_n"),
    ("/v1/rerank", {"query": QUERY, "documents": DOCS, "top_n": 6}, 400, "top_n"),
    ("/v1/rerank", {"query": QUERY, "documents": DOCS, "top_n": "2"}, 400, "top_n"),
    ("/v1/rerank", {"query": QUERY, "documents": [{"title": "x"}]}, 400, "documents[0].text"),
    ("/v1/rerank", {"query": QUERY, "documents": [{"text": 5}]}, 400, "documents[0].text"),
    ("/v2/rerank", {"query": QUERY, "documents": [None]}, 400, "documents[0]"),
    ("/v2/rerank", {"query": QUERY, "documents": DOCS, "return_documents": 1}, 400, "return_documents"),
    ("/v2/rerank", {"query": QUERY, "documents": DOCS, "max_tokens_per_doc": 100}, 400, "max_tokens_per_doc"),
    ("/v2/rerank", {"model": 7, "query": QUERY, "documents": DOCS}, 400, "model"),
]


@pytest.mark.parametrize("path, body, status, field", BAD, ids=[f"{p}-{f}-{i}" for i, (p, _, _, f) in enumerate(BAD)])
def test_bad_input(server, path, body, status, field):
    r = httpx.post(server.url + path, json=body, timeout=30)
    assert r.status_code == status, r.text
    text = r.text
    assert field in text
    if path == "/rerank":
        assert r.json()["error_type"] == "Validation"
    else:
        assert r.json()["error"]["param"] == field


def test_not_json(server):
    r = httpx.post(server.url + "/v1/rerank", content=b"{nope", headers={"content-type": "application/json"}, timeout=10)
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]


@pytest.mark.parametrize("path, body", [("/v1/embeddings", {"input": "hi"}), ("/embed", {"inputs": "hi"}),
                                        ("/embed_all", {"inputs": "hi"}),
                                        ("/similarity", {"inputs": {"source_sentence": "a", "sentences": ["b"]}})])
def test_embedding_routes_refused_naming_the_task(server, path, body):
    r = httpx.post(server.url + path, json=body, timeout=10)
    assert r.status_code == 400 and "rerank" in r.text and "reranker" in r.text, r.text


def test_tokenize_works_on_a_reranker(server):
    r = httpx.post(server.url + "/tokenize", json={"inputs": "hello"}, timeout=10)
    assert r.status_code == 200 and r.json()[0][0]["special"]


def test_concurrent_clients(server, reranker):
    queries = [f"query number {i} about plants and sunlight" for i in range(32)]
    wants = [np.asarray(reranker.predict([(q, d) for d in DOCS]), dtype=np.float64) for q in queries]

    def one(i):
        path = "/rerank" if i % 2 else "/v1/rerank"
        body = {"query": queries[i], ("texts" if i % 2 else "documents"): DOCS}
        r = httpx.post(server.url + path, json=body, timeout=120)
        r.raise_for_status()
        results = r.json() if i % 2 else r.json()["results"]
        got = np.empty(len(DOCS))
        for x in results:
            got[x["index"]] = x["score" if i % 2 else "relevance_score"]
        return np.abs(got - wants[i]).max()

    with ThreadPoolExecutor(32) as pool:
        errors = list(pool.map(one, range(32)))
    assert max(errors) <= TOL


def test_embedder_refuses_rerank_routes(minilm_export, tmp_path):
    s = Server(tmp_path / "server.log", "--model", str(minilm_export))
    try:
        for path, body in (("/rerank", {"query": "q", "texts": ["d"]}), ("/v1/rerank", {"query": "q", "documents": ["d"]}),
                           ("/v2/rerank", {"query": "q", "documents": ["d"]})):
            r = httpx.post(s.url + path, json=body, timeout=10)
            assert r.status_code == 400 and "task 'embed'" in r.text, r.text
    finally:
        assert s.stop() == 0, s.log


def test_cross_encoder_folder_exported_on_first_use(tiny_cross_encoders, tmp_path, reranker, want):
    """--model a cross-encoder model folder: exported on first use as a reranker, served on the rerank routes;
    --pooling (an embedding option) is refused at startup, not ignored."""
    cache = {"EMBEDDING_ENGINE_CACHE": str(tmp_path / "cache")}
    s = Server(tmp_path / "server.log", "--model", str(tiny_cross_encoders["xlm-roberta"]), env=cache)
    try:
        from engine import Reranker

        local = Reranker(tiny_cross_encoders["xlm-roberta"], device="cpu", cache_dir=str(tmp_path / "cache"))
        expect = np.asarray(local.predict([(QUERY, d) for d in DOCS]), dtype=np.float64)
        r = httpx.post(s.url + "/rerank", json={"query": QUERY, "texts": DOCS}, timeout=30)
        _check_ranking(r.json(), expect, "score")
        assert httpx.get(s.url + "/info", timeout=10).json()["task"] == "rerank"
    finally:
        assert s.stop() == 0, s.log
    with pytest.raises(RuntimeError, match="pooling"):
        Server(tmp_path / "refused.log", "--model", str(tiny_cross_encoders["xlm-roberta"]), "--pooling", "mean", env=cache)
