"""Reranker adapters inside the real frameworks, against sentence-transformers' CrossEncoder on the tiny random
cross-encoders: LangChain's ContextualCompressionRetriever with EngineReranker and with its own CrossEncoderReranker
over EngineCrossEncoder, LlamaIndex's retriever query engine with EngineRerank; the same documents in the same order
with the same scores (max abs 1e-4). Then one shared model per options, and what each adapter refuses."""
from __future__ import annotations

import gc

import numpy as np
import pytest

from engine import Reranker
from engine.errors import ConfigError

ARCHS = ("bert", "xlm-roberta", "modernbert")
RETRIEVED = 12  # documents the first-stage retriever hands to the reranker
TOP_N = 5


@pytest.fixture(scope="module")
def corpus(real_texts) -> tuple[list[str], list[str]]:
    """(queries, documents): short pydoc lines, and paragraphs of mixed lengths up to past the tiny max_length."""
    queries = [t for t in real_texts if len(t.split()) <= 8][:3]
    return queries, real_texts[::41][:30]


@pytest.fixture(scope="module")
def cross_encoder():
    from sentence_transformers import CrossEncoder

    return lambda folder: CrossEncoder(str(folder), device="cpu")


@pytest.fixture(scope="module")
def lc_retriever(corpus, embedder):
    """A LangChain first stage: the engine's embeddings of the documents in an InMemoryVectorStore."""
    from langchain_core.vectorstores import InMemoryVectorStore

    from engine.integrations.langchain import EngineEmbeddings

    store = InMemoryVectorStore(EngineEmbeddings(embedder))
    store.add_texts(corpus[1], ids=[f"doc{i}" for i in range(len(corpus[1]))], metadatas=[{"n": i} for i in range(len(corpus[1]))])
    return store.as_retriever(search_kwargs={"k": RETRIEVED})


def check_ranking(got_texts: list[str], got_scores: list[float], reference: list[dict], n: int, ce=None,
                  query=None) -> None:
    """The adapter's n documents and scores are the first n of CrossEncoder.rank's (reference: all candidates ranked):
    scores within 1e-4, and the same document at each place, or one the reference scores the same within 1e-6 (the
    sigmoid of a large logit ties at float32's resolution). With ce: the raw logits of the candidates spread, so the
    order means something."""
    assert len(got_texts) == len(got_scores) == n
    by_text = {r["text"]: r["score"] for r in reference}
    reference = reference[:n]
    assert max(abs(a - r["score"]) for a, r in zip(got_scores, reference)) <= 1e-4
    for i, (text, r) in enumerate(zip(got_texts, reference)):
        assert text == r["text"] or abs(by_text.get(text, -1.0) - r["score"]) <= 1e-6, (i, text, r)
    if ce is not None:
        import torch

        logits = ce.predict([(query, r["text"]) for r in reference], activation_fn=torch.nn.Identity())
        assert np.ptp(logits) > 0.01  # 100x the score tolerance


@pytest.mark.parametrize("arch", ARCHS)
def test_langchain_compression_retriever_with_engine_reranker(arch, corpus, lc_retriever, tiny_rerankers,
                                                              tiny_cross_encoders, cross_encoder):
    from langchain_classic.retrievers import ContextualCompressionRetriever

    from engine.integrations.langchain_rerank import EngineReranker

    ce = cross_encoder(tiny_cross_encoders[arch])
    retriever = ContextualCompressionRetriever(
        base_compressor=EngineReranker(model=tiny_rerankers[arch], device="cpu", top_n=TOP_N), base_retriever=lc_retriever)
    for query in corpus[0]:
        first = lc_retriever.invoke(query)
        want = ce.rank(query, [d.page_content for d in first], return_documents=True)
        got = retriever.invoke(query)
        check_ranking([d.page_content for d in got], [d.metadata["relevance_score"] for d in got], want, TOP_N, ce, query)
        source = {d.page_content: d for d in first}  # ids and metadata travel along
        assert [(d.id, d.metadata["n"]) for d in got] == [(source[d.page_content].id, source[d.page_content].metadata["n"])
                                                          for d in got]
        assert all("relevance_score" not in d.metadata for d in first)  # the retriever's documents are not changed
        engine = Reranker(tiny_rerankers[arch], device="cpu").rank(query, [d.page_content for d in first], top_k=TOP_N,
                                                                   return_documents=True)
        check_ranking([d.page_content for d in got], [r["score"] for r in engine], want, TOP_N)
        assert [r["text"] for r in engine] == [d.page_content for d in got]  # exactly Reranker.rank's order


def test_langchain_async_compression_and_top_n_none(corpus, lc_retriever, tiny_rerankers, tiny_cross_encoders,
                                                    cross_encoder):
    import asyncio

    from langchain_classic.retrievers import ContextualCompressionRetriever

    from engine.integrations.langchain_rerank import EngineReranker

    ce = cross_encoder(tiny_cross_encoders["bert"])
    retriever = ContextualCompressionRetriever(
        base_compressor=EngineReranker(model=tiny_rerankers["bert"], device="cpu", top_n=None), base_retriever=lc_retriever)
    query = corpus[0][0]
    got = asyncio.run(retriever.ainvoke(query))
    want = ce.rank(query, [d.page_content for d in lc_retriever.invoke(query)], return_documents=True)
    check_ranking([d.page_content for d in got], [d.metadata["relevance_score"] for d in got], want, RETRIEVED, ce, query)


@pytest.mark.parametrize("arch", ["bert", "modernbert"])
def test_langchain_cross_encoder_reranker_over_engine_cross_encoder(arch, corpus, lc_retriever, tiny_rerankers,
                                                                    tiny_cross_encoders, cross_encoder):
    from langchain_classic.retrievers import ContextualCompressionRetriever
    from langchain_classic.retrievers.document_compressors import CrossEncoderReranker

    from engine.integrations.langchain_rerank import EngineCrossEncoder

    ce = cross_encoder(tiny_cross_encoders[arch])
    model = EngineCrossEncoder(model=tiny_rerankers[arch], device="cpu")
    retriever = ContextualCompressionRetriever(base_compressor=CrossEncoderReranker(model=model, top_n=TOP_N),
                                               base_retriever=lc_retriever)
    for query in corpus[0]:
        texts = [d.page_content for d in lc_retriever.invoke(query)]
        want = ce.rank(query, texts, return_documents=True)
        got = retriever.invoke(query)
        scores = model.score([(query, d.page_content) for d in got])
        assert all(type(s) is float for s in scores)
        check_ranking([d.page_content for d in got], scores, want, TOP_N, ce, query)
        pairs = [(query, t) for t in texts]
        assert np.abs(np.array(model.score(pairs)) - ce.predict(pairs)).max() <= 1e-4
    assert model.score([]) == []


@pytest.fixture(scope="module")
def li_index(corpus, embedder):
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode

    from engine.integrations.llamaindex import EngineEmbedding

    nodes = [TextNode(id_=f"doc{i}", text=t) for i, t in enumerate(corpus[1])]
    return VectorStoreIndex(nodes, embed_model=EngineEmbedding(embedder))


@pytest.mark.parametrize("arch", ARCHS)
def test_llamaindex_query_engine_with_engine_rerank(arch, corpus, li_index, tiny_rerankers, tiny_cross_encoders,
                                                    cross_encoder):
    from llama_index.core.llms.mock import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine
    from llama_index.core.response_synthesizers.no_text import NoText
    from llama_index.core.schema import MetadataMode

    from engine.integrations.llamaindex_rerank import EngineRerank

    ce = cross_encoder(tiny_cross_encoders[arch])
    retriever = li_index.as_retriever(similarity_top_k=RETRIEVED)
    rerank = EngineRerank(model=tiny_rerankers[arch], device="cpu", top_n=TOP_N, keep_retrieval_score=True)
    # response_mode "no_text": the engine retrieves and postprocesses, and no LLM is called (MockLLM is never asked)
    # NoText built by hand with the MockLLM: llama-index's factory builds it without the llm, which then falls back
    # to Settings.llm (OpenAI, not installed)
    engine = RetrieverQueryEngine(retriever, NoText(llm=MockLLM()), node_postprocessors=[rerank])
    for query in corpus[0]:
        first = retriever.retrieve(query)
        texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in first]
        want = ce.rank(query, texts, return_documents=True)
        got = engine.query(query).source_nodes
        check_ranking([n.node.get_content() for n in got], [n.score for n in got], want, TOP_N, ce, query)
        retrieval = {n.node.node_id: n.score for n in first}
        assert all(n.node.metadata["retrieval_score"] == pytest.approx(retrieval[n.node.node_id]) for n in got)
        direct = rerank.postprocess_nodes(first, query_str=query)  # the same called by hand on a retriever's results
        assert [n.node.node_id for n in direct] == [n.node.node_id for n in got]


def test_llamaindex_plain_nodes_empty_and_missing_query(tiny_rerankers, tiny_cross_encoders, cross_encoder, corpus):
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from engine.integrations.llamaindex_rerank import EngineRerank

    rerank = EngineRerank(model=tiny_rerankers["bert"], device="cpu", top_n=None)
    nodes = [NodeWithScore(node=TextNode(text=t), score=0.5) for t in corpus[1][:8]]
    query = corpus[0][1]
    got = rerank.postprocess_nodes(nodes, query_bundle=QueryBundle(query))
    want = cross_encoder(tiny_cross_encoders["bert"]).rank(query, corpus[1][:8], return_documents=True)
    check_ranking([n.node.get_content() for n in got], [n.score for n in got], want, 8, cross_encoder(tiny_cross_encoders["bert"]), query)
    assert all(n.score == 0.5 for n in nodes)  # the input's scores are left as they were
    assert rerank.postprocess_nodes([], query_str=query) == []
    with pytest.raises(ValueError, match="EngineRerank needs the query"):
        rerank.postprocess_nodes(nodes)


def test_one_reranker_per_options_shared_by_every_adapter(tiny_rerankers):
    from engine.integrations import shared_rerank
    from engine.integrations.langchain_rerank import EngineCrossEncoder, EngineReranker
    from engine.integrations.llamaindex_rerank import EngineRerank

    folder = tiny_rerankers["xlm-roberta"]
    built = [EngineReranker(model=folder, device="cpu"), EngineCrossEncoder(model=str(folder), device="cpu"),
             EngineRerank(model=folder, device="cpu")]
    assert len({id(a.reranker) for a in built}) == 1
    assert EngineReranker(built[0].reranker).reranker is built[0].reranker  # a Reranker handed in is used as is
    other = EngineRerank(model=folder, device="cpu", max_batch_tokens=999)  # other options: its own model
    assert other.reranker is not built[0].reranker and other.reranker.max_batch_tokens == 999
    key = next(k for k, v in shared_rerank._CACHE.items() if v is other.reranker)
    del other
    gc.collect()
    assert key not in shared_rerank._CACHE  # unloaded when no adapter uses it


def test_what_the_adapters_refuse(tiny_rerankers, tiny_cross_encoders, minilm_export, minilm_path, embedder):
    from langchain_core.documents import Document

    from engine.integrations.langchain_rerank import EngineCrossEncoder, EngineReranker
    from engine.integrations.llamaindex_rerank import EngineRerank

    adapters = (EngineReranker, EngineCrossEncoder, EngineRerank)
    for make in adapters:
        # an embedding model, as an export folder or a model folder (refused before any export runs): the runtime's words
        for model in (minilm_export, minilm_path):
            with pytest.raises(ConfigError, match="so it cannot score text pairs"):
                make(model=model, device="cpu")
        with pytest.raises(ConfigError, match="Reranker needs a cross-encoder"):
            make()  # the bundled default is an embedding model
        with pytest.raises(ConfigError, match="unknown option 'devcie'; the options are EmbedderConfig's fields: model,"):
            make(model=tiny_rerankers["bert"], devcie="cpu")
        with pytest.raises(ConfigError, match="normalize shapes embeddings"):
            make(model=tiny_cross_encoders["bert"], normalize=True)
        with pytest.raises(ConfigError, match="scores 3 labels per pair"):
            make(model=tiny_rerankers["bert-3labels"], device="cpu")
        with pytest.raises(TypeError, match="reranker must be an engine.Reranker, got Embedder"):
            make(embedder)
        with pytest.raises(TypeError, match="not both"):
            make(Reranker(tiny_rerankers["bert"], device="cpu"), device="cpu")
    for make in (EngineReranker, EngineRerank):
        for bad in (0, -1, True, 2.5):
            with pytest.raises(ValueError, match="top_n must be None"):
                make(model=tiny_rerankers["bert"], device="cpu", top_n=bad)
    reranker = EngineReranker(model=tiny_rerankers["bert"], device="cpu")
    assert reranker.compress_documents([], "a query") == []
    with pytest.raises(TypeError, match="query must be a string"):
        reranker.compress_documents([Document(page_content="text")], None)
