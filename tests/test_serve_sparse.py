"""engine serve with a SPLADE sparse encoder (issue 26): TEI's POST /embed_sparse (and POST /, /invocations) on a real
server subprocess over the tiny sparse exports, through httpx (no TEI client has a sparse method: huggingface_hub's
InferenceClient has none); the answers equal SparseEncoder.encode_sparse on the same texts (the same active indices,
values within 1e-5) and sentence-transformers' SparseEncoder within 1e-4; /info's sparse fields; 32 concurrent
clients all get their answers; bad inputs get 4xx naming the field; the wrong task is refused both ways."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from serve_helpers import Server

TEXTS = ["Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
         "The stock market fell sharply on Tuesday.",
         "a",
         "Chlorophyll absorbs red and blue light in the leaves of plants, " * 6,
         "Solar panels convert sunlight into electricity."]
TOL = 1e-5


@pytest.fixture(scope="module")
def server(tiny_sparse_exports, tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("serve-sparse") / "server.log", "--model", str(tiny_sparse_exports["bert-max"]),
               "--max-inputs", "64")
    yield s
    assert s.stop() == 0, s.log


@pytest.fixture(scope="module")
def encoder(tiny_sparse_exports):
    from engine import SparseEncoder

    return SparseEncoder(tiny_sparse_exports["bert-max"], device="cpu")


def _rows(answer: list) -> list[tuple[np.ndarray, np.ndarray]]:
    """TEI's [[{"index", "value"}]] as (indices, values) per text, checking the shape of every entry."""
    out = []
    for row in answer:
        assert all(set(x) == {"index", "value"} and type(x["index"]) is int for x in row), row
        out.append((np.asarray([x["index"] for x in row], dtype=np.int64), np.asarray([x["value"] for x in row])))
    return out


def _check_equal(got, want) -> None:
    assert len(got) == len(want)
    for (gi, gv), (wi, wv) in zip(got, want):
        assert gi.tolist() == wi.tolist()  # the same active dimensions, ascending
        assert np.all(gv != 0) and np.abs(gv - wv).max(initial=0) <= TOL


def test_embed_sparse_equals_encode_sparse(server, encoder):
    want = encoder.encode_sparse(TEXTS)
    assert sum(len(i) for i, _ in want) > 0  # a test that could pass on empty rows would prove nothing
    r = httpx.post(server.url + "/embed_sparse", json={"inputs": TEXTS}, timeout=30)
    assert r.status_code == 200, r.text
    _check_equal(_rows(r.json()), want)
    one = httpx.post(server.url + "/embed_sparse", json={"inputs": TEXTS[0], "truncate": True,
                                                         "truncation_direction": "Right"}, timeout=30)
    _check_equal(_rows(one.json()), want[:1])
    for route in ("/", "/invocations"):  # TEI's task route on a sparse model
        same = httpx.post(server.url + route, json={"inputs": TEXTS}, timeout=30)
        assert same.status_code == 200, same.text
        _check_equal(_rows(same.json()), want)


def test_token_ids_are_read_as_their_text(server, encoder):
    ids = [encoder.tokenizer.encode(t).ids for t in TEXTS[:2]]
    r = httpx.post(server.url + "/embed_sparse", json={"inputs": ids}, timeout=30)
    assert r.status_code == 200, r.text
    _check_equal(_rows(r.json()), encoder.encode_sparse(TEXTS[:2]))


def test_equals_sentence_transformers(server, tiny_sparse_encoders):
    from sentence_transformers import SparseEncoder

    st = SparseEncoder(str(tiny_sparse_encoders["bert-max"]), device="cpu")
    want = st.encode_document(TEXTS, convert_to_sparse_tensor=False).cpu().numpy()
    got = np.zeros_like(want)
    r = httpx.post(server.url + "/embed_sparse", json={"inputs": TEXTS}, timeout=30)
    for k, (idx, values) in enumerate(_rows(r.json())):
        got[k, idx] = values
    assert ((got != 0) == (want != 0)).all()
    assert np.abs(got - want).max() <= 1e-4


def test_info_names_the_sparse_task(server, encoder):
    info = httpx.get(server.url + "/info", timeout=10).json()
    assert info["task"] == "sparse" and info["model_type"] == {"embedding": {"pooling": "splade"}}
    assert info["vocab_size"] == encoder.vocab_size and info["splade"]["pooling"] == "max"
    assert info["query"] == "document" and info["max_active_dims"] is None
    assert info["max_input_length"] == encoder.max_length


def test_concurrent_clients_all_get_their_answers(server, encoder):
    texts = [f"{TEXTS[i % len(TEXTS)]} request {i}" for i in range(32)]
    want = encoder.encode_sparse(texts)
    before = server.metric("engine_requests_total", route="/embed_sparse", status="200")

    def one(i: int):
        batch = texts[i:] + texts[:i]  # every request a different mix of lengths
        r = httpx.post(server.url + "/embed_sparse", json={"inputs": batch}, timeout=60)
        assert r.status_code == 200, r.text
        _check_equal(_rows(r.json()), want[i:] + want[:i])

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(one, range(32)))
    assert server.metric("engine_requests_total", route="/embed_sparse", status="200") - before == 32
    assert server.metric("engine_input_tokens_total", route="/embed_sparse") > 0


BAD = [
    ({"inputs": []}, 422, "inputs"),
    ({}, 422, "inputs"),
    ({"inputs": [1.5]}, 422, "inputs[0]"),
    ({"inputs": ["ok", 7]}, 422, "inputs[1]"),
    ({"inputs": {"text": "x"}}, 422, "inputs"),
    ({"inputs": ["ok", "word " * 400], "truncate": False}, 413, "inputs[1]"),
    ({"inputs": "x", "truncate": "no"}, 422, "truncate"),
    ({"inputs": "x", "truncation_direction": "left"}, 422, "truncation_direction"),
    ({"inputs": "x", "prompt_name": "no-such-prompt"}, 422, "prompt_name"),
    ({"inputs": [[1, 2, 3]]}, 422, "inputs[0]"),
    ({"inputs": ["x"] * 65}, 413, "inputs"),
]


@pytest.mark.parametrize("body,status,field", BAD, ids=[str(b)[:50] for b, _, _ in BAD])
def test_bad_input_is_refused_naming_the_field(server, body, status, field):
    r = httpx.post(server.url + "/embed_sparse", json=body, timeout=30)
    assert r.status_code == status, r.text
    assert r.json()["error_type"] == "Validation" and field in r.json()["error"], r.text


def test_malformed_body_is_a_4xx(server):
    r = httpx.post(server.url + "/embed_sparse", content=b"{not json", timeout=10)
    assert r.status_code == 400 and "error" in r.json(), r.text


def test_sparse_server_refuses_dense_and_rerank_routes(server):
    for path, body in (("/embed", {"inputs": "x"}), ("/v1/embeddings", {"input": "x"}), ("/embed_all", {"inputs": "x"}),
                       ("/rerank", {"query": "q", "texts": ["d"]}), ("/v1/rerank", {"query": "q", "documents": ["d"]})):
        r = httpx.post(server.url + path, json=body, timeout=10)
        assert r.status_code == 400, (path, r.text)
        assert "task 'sparse'" in r.text and "/embed_sparse" in r.text, (path, r.text)


def test_inference_free_model_serves_its_document_side(tiny_sparse_exports, tmp_path):
    from engine import SparseEncoder

    folder = tiny_sparse_exports["bert-inference-free"]
    enc = SparseEncoder(folder, device="cpu")
    s = Server(tmp_path / "server.log", "--model", str(folder))
    try:
        assert httpx.get(s.url + "/info", timeout=10).json()["query"] == "static"
        r = httpx.post(s.url + "/embed_sparse", json={"inputs": TEXTS}, timeout=30)
        assert r.status_code == 200, r.text
        _check_equal(_rows(r.json()), enc.encode_sparse(TEXTS))  # documents run the graph
    finally:
        assert s.stop() == 0, s.log


@pytest.mark.parametrize("kind", ["embedder", "reranker"])
def test_other_tasks_refuse_embed_sparse(kind, tiny_exports, tiny_rerankers, tmp_path):
    folder = tiny_exports["bert"] if kind == "embedder" else tiny_rerankers["bert"]
    s = Server(tmp_path / "server.log", "--model", str(folder))
    try:
        r = httpx.post(s.url + "/embed_sparse", json={"inputs": "x"}, timeout=10)
        assert r.status_code == 400, r.text
        task = "task 'embed'" if kind == "embedder" else "task 'rerank'"
        assert task in r.text and "SPLADE" in r.text and "sparse" in r.json()["error"], r.text
    finally:
        assert s.stop() == 0, s.log
