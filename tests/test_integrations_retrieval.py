"""Retrieval through each adapter, in its real store, matches sentence-transformers on a task with known answers.

Task (benchmarks/retrieval_task.py): 200 stdlib names as queries over 400 documents (their docstrings' first
paragraphs and distractors). Each adapter indexes the documents into its framework's own store and answers the
queries through it; recall@10 and MRR@10 must equal sentence-transformers' (exact cosine over its vectors) within
0.002, and the first result must be the same document for >= 99.5% of queries. The full task is the benchmark's.
"""
from __future__ import annotations

import pytest

from benchmarks.retrieval_task import load_task, scores, top1_agreement, top_k

K = 10


@pytest.fixture(scope="module")
def task():
    return load_task(n_queries=200, n_docs=400)


@pytest.fixture(scope="module")
def reference(task, st_model):
    """sentence-transformers' rankings and scores: the bar every adapter must meet."""
    q = st_model.encode_query(task.queries, convert_to_numpy=True)
    d = st_model.encode_document(task.docs, convert_to_numpy=True)
    ranked = top_k(q, d, task.doc_ids, K)
    return ranked, scores(ranked, task.answers, K)


def check(name: str, ranked: list[list[str]], task, reference) -> None:
    ref_ranked, ref = reference
    got = scores(ranked, task.answers, K)
    agree = top1_agreement(ranked, ref_ranked)
    print(f"{name}: {got} (sentence-transformers {ref}), top-1 agreement {agree:.4f}")
    assert all(len(row) == K for row in ranked)
    assert ref["recall@10"] > 0.5  # the task is meaningful: names do find their docstrings
    for metric in ("recall@10", "mrr@10"):
        assert abs(got[metric] - ref[metric]) <= 0.002, (name, metric, got, ref)
    assert agree >= 0.995, (name, agree)


def test_langchain_in_memory_vector_store(task, reference, embedder):
    from langchain_core.vectorstores import InMemoryVectorStore

    from engine.integrations.langchain import EngineEmbeddings

    store = InMemoryVectorStore(EngineEmbeddings(embedder))
    store.add_texts(task.docs, ids=task.doc_ids)
    ranked = [[doc.id for doc in store.similarity_search(q, k=K)] for q in task.queries]
    check("langchain", ranked, task, reference)


def test_llamaindex_vector_store_index(task, reference, embedder):
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode

    from engine.integrations.llamaindex import EngineEmbedding

    nodes = [TextNode(id_=i, text=t) for i, t in zip(task.doc_ids, task.docs)]
    index = VectorStoreIndex(nodes, embed_model=EngineEmbedding(embedder))
    retriever = index.as_retriever(similarity_top_k=K)
    ranked = [[hit.node.node_id for hit in retriever.retrieve(q)] for q in task.queries]
    check("llamaindex", ranked, task, reference)


def test_chroma_persistent_collection(task, reference, embedder, tmp_path):
    import chromadb

    from engine.integrations.chroma import EngineEmbeddingFunction

    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    # exact enough: a wide HNSW search over 400 vectors visits every neighbour that matters
    collection = client.create_collection("docs", embedding_function=EngineEmbeddingFunction(embedder),
                                          configuration={"hnsw": {"space": "cosine", "ef_construction": 400,
                                                                  "ef_search": 400, "max_neighbors": 64}})
    collection.add(ids=task.doc_ids, documents=task.docs)
    # reopened from its saved configuration alone: the registered function is rebuilt from get_config()
    reopened = chromadb.PersistentClient(path=str(tmp_path / "chroma")).get_collection("docs")
    found = reopened.query(query_texts=task.queries, n_results=K)
    check("chroma", found["ids"], task, reference)


def test_lancedb_table_with_registry_function(task, reference, embedder, tmp_path):
    import lancedb
    from lancedb.embeddings import get_registry
    from lancedb.pydantic import LanceModel, Vector

    import engine.integrations.lancedb  # noqa: F401  (registers "embedding-engine")

    func = get_registry().get("embedding-engine").create(embedder=embedder)

    class Doc(LanceModel):
        id: str
        text: str = func.SourceField()
        vector: Vector(func.ndims()) = func.VectorField()

    db = lancedb.connect(tmp_path / "lance")
    table = db.create_table("docs", schema=Doc)
    table.add([{"id": i, "text": t} for i, t in zip(task.doc_ids, task.docs)])
    reopened = lancedb.connect(tmp_path / "lance").open_table("docs")  # the function comes from the table's metadata
    ranked = [reopened.search(q).distance_type("cosine").limit(K).select(["id", "_distance"]).to_list() for q in task.queries]
    check("lancedb", [[r["id"] for r in rows] for rows in ranked], task, reference)
