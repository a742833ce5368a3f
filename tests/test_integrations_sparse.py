"""Hybrid search with Qdrant (local mode, no server) inside the real frameworks: LangChain's QdrantVectorStore with
EngineSparseEmbeddings (SPARSE and HYBRID retrieval modes, the dense side EngineEmbeddings on MiniLM), LlamaIndex's
QdrantVectorStore(enable_hybrid=True) with engine_sparse_fns under a VectorStoreIndex (the dense side EngineEmbedding).
The vectors equal SparseEncoder.encode_sparse's (and sentence-transformers'); a sparse search returns the top 10 of the
exact dot products of sentence-transformers' SparseEncoder vectors; a hybrid search returns the fusion (Qdrant's RRF,
llama-index's relative score fusion) computed here from each side's exact ranking. Then one shared model per options,
the refusals of a model of another task, and bad input."""
from __future__ import annotations

import uuid

import numpy as np
import pytest

from engine import SparseEncoder
from engine.errors import ConfigError

MODELS = ("bert-max", "bert-inference-free")  # a SPLADE query side, and static query weights (inference-free)
K = 10
TOL = 1e-4  # sparse values: engine vs sentence-transformers (tests/test_sparse_parity.py)


@pytest.fixture(scope="module")
def corpus(real_texts) -> tuple[list[str], list[str]]:
    """(queries, documents): 6 short pydoc lines, and 100 paragraphs of mixed lengths (long ones cut at 64 tokens)."""
    docs = real_texts[::7][:100]
    queries = [t for t in real_texts[1::7] if 3 <= len(t.split()) <= 10][:6]
    assert len(docs) == 100 and len(queries) == 6
    return queries, docs


@pytest.fixture(scope="module")
def reference(tiny_sparse_encoders, corpus):
    """name -> (queries, docs) dense vocabulary vectors from sentence-transformers' SparseEncoder."""
    from sentence_transformers import SparseEncoder as STSparseEncoder

    out = {}
    for name in MODELS:
        st = STSparseEncoder(str(tiny_sparse_encoders[name]), device="cpu")
        q, d = st.encode_query(corpus[0]), st.encode_document(corpus[1])
        out[name] = (q.to_dense().numpy(), d.to_dense().numpy())
    return out


def dense_rows(rows, width: int) -> np.ndarray:
    out = np.zeros((len(rows), width), dtype=np.float32)
    for r, (indices, values) in enumerate(rows):
        out[r, list(indices)] = values
    return out


def check_top(got_ids: list[int], got_scores: list[float], scores: np.ndarray, n: int, tol: float) -> int:
    """got is the top n of scores (exact, one per document; only those above 0: Qdrant's sparse search skips documents
    that share no index with the query): the scores within tol at each place, and the same document there or one the
    reference scores the same within tol; the reference's top ones spread well past tol. Returns how many there are."""
    order = ranking(scores, n)
    assert len(got_ids) == len(order)
    if len(order) < 2:
        return len(order)
    assert np.ptp(scores[order]) > 100 * tol
    assert np.abs(np.asarray(got_scores) - scores[order]).max() <= tol
    for i, (doc, want) in enumerate(zip(got_ids, order)):
        assert doc == want or abs(scores[doc] - scores[want]) <= tol, (i, doc, want)
    return len(order)


def ranking(scores: np.ndarray, n: int) -> list[int]:
    """The top n documents by score, positive scores only (Qdrant's sparse search skips documents sharing no index)."""
    return [int(i) for i in np.argsort(-scores, kind="stable")[:n] if scores[i] > 0]


@pytest.mark.parametrize("name", MODELS)
def test_vectors_equal_encode_sparse_and_sentence_transformers(name, tiny_sparse_exports, corpus, reference):
    from langchain_qdrant import SparseVector

    from engine.integrations.langchain_sparse import EngineSparseEmbeddings
    from engine.integrations.llamaindex_sparse import engine_sparse_fns

    queries, docs = corpus
    model = SparseEncoder(tiny_sparse_exports[name], device="cpu")
    lc = EngineSparseEmbeddings(model)
    doc_fn, query_fn = engine_sparse_fns(model)
    for query, texts, want in ((False, docs, reference[name][1]), (True, queries, reference[name][0])):
        rows = model.encode_sparse(texts, query=query)
        got = [lc.embed_query(t) for t in texts] if query else lc.embed_documents(texts)
        assert all(isinstance(v, SparseVector) for v in got)
        assert [v.indices for v in got] == [i.tolist() for i, _ in rows]
        assert [v.values for v in got] == [v.tolist() for _, v in rows]
        assert (query_fn if query else doc_fn)(texts) == ([i.tolist() for i, _ in rows], [v.tolist() for _, v in rows])
        dense = dense_rows(rows, model.vocab_size)
        assert np.array_equal(dense != 0, want != 0) and np.abs(dense - want).max() <= TOL
    assert lc.embed_documents([]) == [] and doc_fn([]) == ([], [])
    limited = EngineSparseEmbeddings(model, max_active_dims=5).embed_documents(docs[:8])
    assert [v.indices for v in limited] == [i.tolist() for i, _ in model.encode_sparse(docs[:8], max_active_dims=5)]
    assert max(len(v.indices) for v in limited) == 5


@pytest.mark.parametrize("name", MODELS)
def test_langchain_sparse_mode_ranks_as_exact_reference(name, tiny_sparse_exports, corpus, reference):
    from langchain_qdrant import QdrantVectorStore, RetrievalMode

    from engine.integrations.langchain_sparse import EngineSparseEmbeddings

    queries, docs = corpus
    store = QdrantVectorStore.from_texts(docs, ids=list(range(len(docs))), metadatas=[{"n": i} for i in range(len(docs))],
                                         location=":memory:", collection_name="docs", retrieval_mode=RetrievalMode.SPARSE,
                                         sparse_embedding=EngineSparseEmbeddings(model=tiny_sparse_exports[name], device="cpu"))
    scores = reference[name][0] @ reference[name][1].T  # exact dot products of sentence-transformers' vectors
    full = 0
    for q, query in enumerate(queries):
        hits = store.similarity_search_with_score(query, k=K)
        got = [d.metadata["n"] for d, _ in hits]
        assert [docs[n] for n in got] == [d.page_content for d, _ in hits]
        full += check_top(got, [s for _, s in hits], scores[q], K, 1e-3) == K
    assert full >= 3  # most queries share an index with more than K documents


def rrf(rankings: list[list[int]], k: int) -> dict[int, float]:
    """Reciprocal rank fusion as Qdrant computes it: sum over the rankings of 1 / (k + place), places from 0."""
    fused: dict[int, float] = {}
    for ranked in rankings:
        for place, doc in enumerate(ranked):
            fused[doc] = fused.get(doc, 0.0) + 1.0 / (k + place)
    return fused


@pytest.mark.parametrize("name", MODELS)
def test_langchain_hybrid_mode_is_rrf_of_both_rankings(name, tiny_sparse_exports, corpus, embedder):
    from langchain_qdrant import QdrantVectorStore, RetrievalMode
    from qdrant_client import models

    from engine.integrations.langchain import EngineEmbeddings
    from engine.integrations.langchain_sparse import EngineSparseEmbeddings

    queries, docs = corpus
    dense, sparse = EngineEmbeddings(embedder), EngineSparseEmbeddings(model=tiny_sparse_exports[name], device="cpu")
    store = QdrantVectorStore.from_texts(docs, embedding=dense, ids=list(range(len(docs))), location=":memory:",
                                         collection_name="docs", retrieval_mode=RetrievalMode.HYBRID,
                                         sparse_embedding=sparse)
    d_vecs, s_vecs = np.asarray(dense.embed_documents(docs)), dense_rows(
        [(v.indices, v.values) for v in sparse.embed_documents(docs)], sparse.encoder.vocab_size)
    d_vecs /= np.linalg.norm(d_vecs, axis=1, keepdims=True)
    fused_differs = 0
    for query in queries:
        d_rank = ranking(d_vecs @ np.asarray(dense.embed_query(query)), K)
        qv = sparse.embed_query(query)
        s_rank = ranking(s_vecs[:, qv.indices] @ np.asarray(qv.values, dtype=np.float32), K)
        assert len(d_rank) == K and s_rank  # (a query may share indices with fewer than K documents)
        for fusion, k in ((None, 2), (models.RrfQuery(rrf=models.Rrf(k=60)), 60)):  # None: LangChain's default (RRF)
            want = rrf([d_rank, s_rank], k)
            hits = store.similarity_search_with_score(query, k=K, hybrid_fusion=fusion)
            got = [int(d.metadata["_id"]) for d, _ in hits]
            assert len(got) == K and set(got) <= set(d_rank) | set(s_rank)
            assert [s for _, s in hits] == pytest.approx([want[g] for g in got], abs=1e-6)
            assert all(a >= b for (_, a), (_, b) in zip(hits, hits[1:]))
            left_out = [s for doc, s in want.items() if doc not in got]
            assert not left_out or min(s for _, s in hits) >= max(left_out) - 1e-9  # the top K of the fusion
        fused_differs += set(got) not in (set(d_rank), set(s_rank))
    assert fused_differs  # the fusion is not one side's ranking


def node_id(i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"doc{i}"))  # Qdrant point ids are integers or UUIDs


def relative_score_fusion(dense: dict[int, float], sparse: dict[int, float], top: int) -> list[tuple[int, float]]:
    """llama-index's default fusion: each side's scores min-max scaled to 0..1, averaged (alpha 0.5), the top ones."""
    if not sparse:
        return sorted(dense.items(), key=lambda x: -x[1])  # one side empty: the other one's results as they are

    def scaled(side):
        lo, hi = min(side.values()), max(side.values())
        return {d: hi if hi == lo else (s - lo) / (hi - lo) for d, s in side.items()}
    a, b = scaled(dense), scaled(sparse)
    fused = {d: 0.5 * a.get(d, 0.0) + 0.5 * b.get(d, 0.0) for d in {**dense, **sparse}}
    return sorted(fused.items(), key=lambda x: -x[1])[:top]


@pytest.mark.parametrize("name", MODELS)
def test_llamaindex_hybrid_and_sparse_queries(name, tiny_sparse_exports, corpus, reference, embedder):
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    from engine.integrations.llamaindex import EngineEmbedding
    from engine.integrations.llamaindex_sparse import engine_sparse_fns

    queries, docs = corpus
    fns = engine_sparse_fns(model=tiny_sparse_exports[name], device="cpu")
    store = QdrantVectorStore(client=QdrantClient(location=":memory:"), collection_name="docs", enable_hybrid=True,
                              **fns._asdict())
    ids = {node_id(i): i for i in range(len(docs))}
    dense = EngineEmbedding(embedder)
    index = VectorStoreIndex([TextNode(id_=node_id(i), text=t) for i, t in enumerate(docs)], embed_model=dense,
                             storage_context=StorageContext.from_defaults(vector_store=store))
    hybrid = index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=5, sparse_top_k=K)
    sparse_only = index.as_retriever(vector_store_query_mode="sparse", similarity_top_k=K)
    d_vecs = np.asarray(dense.get_text_embedding_batch(docs))
    d_vecs /= np.linalg.norm(d_vecs, axis=1, keepdims=True)
    s_scores = reference[name][0] @ reference[name][1].T
    for q, query in enumerate(queries):
        hits = sparse_only.retrieve(query)
        check_top([ids[h.node.node_id] for h in hits], [h.score for h in hits], s_scores[q], K, 1e-3)
        d_all = d_vecs @ np.asarray(dense.get_query_embedding(query))
        want = relative_score_fusion({d: float(d_all[d]) for d in ranking(d_all, 5)},
                                     {d: float(s_scores[q, d]) for d in ranking(s_scores[q], K)}, 5)
        hits = hybrid.retrieve(query)
        assert [ids[h.node.node_id] for h in hits] == [d for d, _ in want]
        assert [h.score for h in hits] == pytest.approx([s for _, s in want], abs=1e-3)
        assert [h.node.get_content() for h in hits] == [docs[d] for d, _ in want]


def test_one_shared_encoder_per_options(tiny_sparse_exports):
    from engine.integrations.langchain_sparse import EngineSparseEmbeddings
    from engine.integrations.llamaindex_sparse import engine_sparse_fns

    a = EngineSparseEmbeddings(model=tiny_sparse_exports["bert-max"], device="cpu")
    fns = engine_sparse_fns(model=str(tiny_sparse_exports["bert-max"]), device="cpu")
    assert fns.sparse_doc_fn.args[0] is a.encoder is fns.sparse_query_fn.args[0]
    assert EngineSparseEmbeddings(model=tiny_sparse_exports["bert-max"], device="cpu", max_length=32).encoder is not a.encoder
    own = SparseEncoder(tiny_sparse_exports["bert-sum"], device="cpu")
    assert EngineSparseEmbeddings(own).encoder is own
    assert EngineSparseEmbeddings(model=tiny_sparse_exports["bert-sum"], device="cpu").encoder is own


def test_models_of_another_task_are_refused(minilm_export, minilm_path, embedder, tiny_rerankers,
                                            tiny_sparse_exports):
    from engine.integrations.langchain_sparse import EngineSparseEmbeddings
    from engine.integrations.llamaindex_sparse import engine_sparse_fns

    for make in (EngineSparseEmbeddings, engine_sparse_fns):
        with pytest.raises(ConfigError, match=r"task 'embed'.*cannot encode sparse vectors"):
            make(model=minilm_export)  # an export folder
        with pytest.raises(ConfigError, match=r"task 'embed'.*SparseEncoder needs a SPLADE model"):
            make(model=minilm_path)  # a model folder: refused before any export
        with pytest.raises(ConfigError, match=r"task 'rerank'.*cannot encode sparse vectors"):
            make(model=tiny_rerankers["bert"])
        with pytest.raises(TypeError, match=r"engine.Embedder \(task 'embed'"):
            make(embedder)
        with pytest.raises(ConfigError, match="SparseEncoder needs a SPLADE model"):
            make()  # the bundled default is an embedding model
        with pytest.raises(ConfigError, match="leave them out"):
            make(model=tiny_sparse_exports["bert-max"], normalize=True)
        with pytest.raises(ConfigError, match="max_active_dims must be a positive integer"):
            make(model=tiny_sparse_exports["bert-max"], max_active_dims=0)
        with pytest.raises(ConfigError, match="unknown option 'modle'"):
            make(modle=tiny_sparse_exports["bert-max"])
        with pytest.raises(TypeError, match="not both"):
            make(SparseEncoder(tiny_sparse_exports["bert-max"], device="cpu"), device="cpu")


def test_bad_input(tiny_sparse_exports):
    from engine.integrations.langchain_sparse import EngineSparseEmbeddings
    from engine.integrations.llamaindex_sparse import engine_sparse_fns

    lc = EngineSparseEmbeddings(model=tiny_sparse_exports["bert-max"], device="cpu")
    doc_fn, query_fn = engine_sparse_fns(model=tiny_sparse_exports["bert-max"], device="cpu")
    with pytest.raises(TypeError, match="a single str; wrap it in a list"):
        lc.embed_documents("one text")
    with pytest.raises(TypeError, match=r"embed_documents: texts\[1\] is int, not str"):
        lc.embed_documents(["a text", 3])
    with pytest.raises(TypeError, match="embed_query takes one string, got list"):
        lc.embed_query(["a text"])
    with pytest.raises(TypeError, match=r"sparse_doc_fn: texts\[0\] is NoneType"):
        doc_fn([None])
    with pytest.raises(TypeError, match=r"sparse_query_fn: texts\[0\] is bytes"):
        query_fn([b"a query"])
    with pytest.raises(ValueError, match="surrogate"):
        lc.embed_documents(["\ud800"])
