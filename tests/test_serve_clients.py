"""engine serve through the third-party clients that speak TEI's or infinity's API (issue 22), each used as its own
docs show it, against one `engine serve` subprocess: huggingface_hub, langchain-huggingface, haystack, llama-index,
litellm, chroma, infinity-client, langchain-community, and openai's models.retrieve. Vectors equal Embedder.encode,
also when the answer comes after the server's heartbeat."""
from __future__ import annotations

import asyncio
import importlib.metadata

import numpy as np
import pytest
from serve_helpers import Server, cos_min

MIN_COS = 0.9999


@pytest.fixture(scope="module")
def server(minilm_export, tmp_path_factory):
    # --heartbeat-s 0.01: nearly every answer comes after a heartbeat (200 headers, spaces, then the body), as a long
    # request's does at the default 1 s, so every client is shown to read such answers
    s = Server(tmp_path_factory.mktemp("serve-tei-clients") / "server.log", "--model", str(minilm_export),
               "--heartbeat-s", "0.01")
    yield s
    assert s.stop() == 0, s.log


@pytest.fixture(scope="module")
def texts(real_texts):
    """Real paragraphs of varied length and one over max length (256 tokens)."""
    return real_texts[:6] + [" ".join(real_texts[40:80])]


@pytest.fixture(scope="module")
def want(embedder, texts):
    return embedder.encode(texts)


@pytest.fixture(autouse=True)
def _offline_clients(monkeypatch):
    """No telemetry or model-cost downloads from the clients (this machine has no network). conftest's HF_HUB_OFFLINE
    (read by huggingface_hub at import) would block its requests to the local server too: lifted for these tests."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HAYSTACK_TELEMETRY_ENABLED", "False")
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def test_huggingface_hub_feature_extraction(server, texts, want):
    from huggingface_hub import AsyncInferenceClient, InferenceClient

    client = InferenceClient(base_url=server.url)
    got = client.feature_extraction(texts)
    assert got.shape == want.shape and cos_min(got, want) > MIN_COS
    assert cos_min(client.feature_extraction(texts[0]), want[:1]) > MIN_COS  # one text: a (1, D) array, as TEI answers
    got_async = asyncio.run(AsyncInferenceClient(base_url=server.url).feature_extraction(texts))
    assert cos_min(got_async, want) > MIN_COS


def test_huggingface_hub_endpoint_info(server, embedder):
    from huggingface_hub import InferenceClient

    info = InferenceClient(server.url, provider="hf-inference").get_endpoint_info()  # hub 1.x checks the provider
    assert info["model_id"] == server.model and info["model_type"] == {"embedding": {"pooling": "mean"}}
    assert info["max_input_length"] == embedder.max_length and info["model_dtype"] == "float32"
    for key in ("model_sha", "max_concurrent_requests", "max_batch_tokens", "max_batch_requests", "max_client_batch_size",
                "tokenization_workers", "version", "auto_truncate"):
        assert key in info
    assert InferenceClient(server.url, provider="hf-inference").health_check()


def test_langchain_huggingface_endpoint_embeddings(server, texts, want):
    """model=URL (1.2.1 and older); 1.2.2+ refuses URLs there, and the documented setting is to hand it
    huggingface_hub clients made with base_url (which also works on 1.2.1)."""
    from huggingface_hub import AsyncInferenceClient, InferenceClient
    from langchain_huggingface import HuggingFaceEndpointEmbeddings

    version = tuple(int(x) for x in importlib.metadata.version("langchain-huggingface").split(".")[:3])
    if version < (1, 2, 2):
        lc = HuggingFaceEndpointEmbeddings(model=server.url)
        assert cos_min(lc.embed_documents(texts), want) > MIN_COS
        assert cos_min([lc.embed_query(texts[0])], want[:1]) > MIN_COS
    lc = HuggingFaceEndpointEmbeddings(model=server.model)
    lc.client, lc.async_client = InferenceClient(base_url=server.url), AsyncInferenceClient(base_url=server.url)
    assert cos_min(lc.embed_documents(texts), want) > MIN_COS
    assert cos_min(asyncio.run(lc.aembed_documents(texts)), want) > MIN_COS


def test_haystack_tei_embedders(server, texts, want):
    from haystack import Document
    from haystack_integrations.components.embedders.huggingface_api import (HuggingFaceAPIDocumentEmbedder,
                                                                            HuggingFaceAPITextEmbedder)

    params = {"api_type": "text_embeddings_inference", "api_params": {"url": server.url}}
    text = HuggingFaceAPITextEmbedder(**params).run(text=texts[0])["embedding"]
    assert cos_min([text], want[:1]) > MIN_COS
    docs = HuggingFaceAPIDocumentEmbedder(**params, batch_size=4).run(documents=[Document(content=t) for t in texts])
    assert cos_min([d.embedding for d in docs["documents"]], want) > MIN_COS


def test_llama_index_huggingface_inference_api_embedding(server, texts, want):
    """Its async methods, in one event loop; of its sync methods only an object's first call works with
    huggingface_hub 1.x (each sync call runs a new event loop, and the hub's async client keeps the HTTP session of
    the first): a client-side limit, documented in docs/integrations.md."""
    from llama_index.embeddings.huggingface_api import HuggingFaceInferenceAPIEmbedding

    li = HuggingFaceInferenceAPIEmbedding(model_name=server.url)

    async def calls():
        return await li.aget_text_embedding_batch(texts), await li.aget_query_embedding(texts[1])

    batch, query = asyncio.run(calls())
    assert cos_min(batch, want) > MIN_COS and cos_min([query], want[1:2]) > MIN_COS
    first_sync = HuggingFaceInferenceAPIEmbedding(model_name=server.url).get_text_embedding_batch(texts)
    assert cos_min(first_sync, want) > MIN_COS


def test_litellm_huggingface_and_infinity(server, texts, want):
    import litellm

    hf = litellm.embedding(model=f"huggingface/{server.model}", api_base=server.url, input=texts,
                           input_type="feature-extraction")  # the task, or litellm asks huggingface.co for it
    assert cos_min([d["embedding"] for d in hf.data], want) > MIN_COS
    inf = litellm.embedding(model=f"infinity/{server.model}", api_base=server.url, input=texts)
    assert cos_min([d["embedding"] for d in inf.data], want) > MIN_COS
    short = litellm.embedding(model=f"infinity/{server.model}", api_base=server.url, input=texts[:2], dimensions=64)
    assert len(short.data[0]["embedding"]) == 64


def test_chroma_huggingface_embedding_server(server, texts, want):
    import chromadb
    from chromadb.utils.embedding_functions import HuggingFaceEmbeddingServer

    ef = HuggingFaceEmbeddingServer(url=server.url)
    assert cos_min(ef(texts), want) > MIN_COS
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()  # earlier tests' clients were made under other telemetry settings
    try:
        docs = chromadb.EphemeralClient().get_or_create_collection("tei-clients", embedding_function=ef)
        docs.add(ids=[str(i) for i in range(len(texts))], documents=texts)
        assert docs.query(query_texts=[texts[2]], n_results=1)["ids"] == [["2"]]
    finally:  # nor may this module's setting outlive it in chroma's per-process client cache
        SharedSystemClient.clear_system_cache()


def test_infinity_client(server, texts, want):
    pytest.importorskip("infinity_client", reason="installed by the Makefile with --no-deps (see pyproject.toml)")
    from infinity_client import Client
    from infinity_client.api.default import embeddings, models
    from infinity_client.models import OpenAIEmbeddingInputText

    client = Client(base_url=server.url)
    listed = models.sync(client=client)
    assert [m.id for m in listed.data] == [server.model] and listed.data[0].capabilities == ["embed"]
    result = embeddings.sync(client=client, body=OpenAIEmbeddingInputText(input_=texts, model=server.model))
    assert cos_min([d.embedding for d in result.data], want) > MIN_COS
    assert result.usage.prompt_tokens > 0


def test_langchain_community_infinity_embeddings(server, texts, want):
    from langchain_community.embeddings import InfinityEmbeddings

    lc = InfinityEmbeddings(model=server.model, infinity_api_url=server.url)
    assert cos_min(lc.embed_documents(texts), want) > MIN_COS
    assert cos_min([lc.embed_query(texts[3])], want[3:4]) > MIN_COS
    assert cos_min(asyncio.run(lc.aembed_documents(texts)), want) > MIN_COS


def test_openai_models_retrieve(server):
    import openai

    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    model = client.models.retrieve(server.model)
    assert model.id == server.model and model.object == "model"
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.models.retrieve("no-such-model")
    assert [m.id for m in client.models.list()] == [server.model]
    assert np.asarray(client.embeddings.create(model=server.model, input="x").data[0].embedding).shape == (384,)


def test_these_answers_came_after_a_heartbeat(server, texts):
    """The module's server answers as a long request is answered: headers, spaces, then the body."""
    import httpx

    r = httpx.post(server.url + "/embed", json={"inputs": texts}, timeout=60)
    assert r.status_code == 200 and r.content[:1] == b" " and r.headers.get("transfer-encoding") == "chunked"
