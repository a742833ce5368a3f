"""The HTTP route into the frameworks: `engine serve` (a subprocess on a free port) called through LangChain's
OpenAIEmbeddings and LlamaIndex's OpenAILikeEmbedding, the OpenAI-compatible clients they ship. Vectors equal
in-process Embedder.encode; the settings each client needs are the ones docs/integrations.md gives."""
from __future__ import annotations

import asyncio

import pytest
from serve_helpers import Server, cos_min

MIN_COS = 0.9999


@pytest.fixture(scope="module")
def server(minilm_export, tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("serve-clients") / "server.log", "--model", str(minilm_export))
    yield s
    assert s.stop() == 0, s.log


@pytest.fixture(scope="module")
def texts(real_texts):
    """Real paragraphs of varied length, one over max length (256 tokens), and one with line breaks."""
    return real_texts[:6] + [" ".join(real_texts[40:80]), "first line\nsecond line\n\nthird"]


def test_langchain_openai_embeddings(server, embedder, texts):
    from langchain_openai import OpenAIEmbeddings

    lc = OpenAIEmbeddings(model=server.model, base_url=server.url + "/v1", api_key="unused",
                          check_embedding_ctx_length=False, max_retries=0)
    want = embedder.encode(texts)
    assert cos_min(lc.embed_documents(texts), want) > MIN_COS
    assert cos_min([lc.embed_query(texts[0])], want[:1]) > MIN_COS
    assert cos_min(asyncio.run(lc.aembed_documents(texts)), want) > MIN_COS
    assert cos_min(lc.embed_documents(texts, chunk_size=3), want) > MIN_COS  # several requests, order kept


def test_llamaindex_openai_like_embedding(server, embedder, texts):
    from llama_index.embeddings.openai_like import OpenAILikeEmbedding

    li = OpenAILikeEmbedding(model_name=server.model, api_base=server.url + "/v1", api_key="unused", max_retries=0,
                             embed_batch_size=64)
    # LlamaIndex's OpenAI client replaces line breaks with spaces before sending; to a WordPiece tokenizer both are
    # whitespace, so the vectors still equal the original texts'
    want = embedder.encode(texts)
    assert cos_min(li.get_text_embedding_batch(texts), want) > MIN_COS
    assert cos_min([li.get_query_embedding(texts[-1])], want[-1:]) > MIN_COS
    assert cos_min(asyncio.run(li.aget_text_embedding_batch(texts)), want) > MIN_COS


def test_token_ids_of_another_tokenizer_are_refused_with_the_fix(server, embedder):
    """LangChain's default settings send tiktoken's ids (OpenAI's vocabulary), not this model's: the server answers
    400 naming the LangChain setting, whether the ids fall outside the vocabulary or inside it."""
    import openai
    from langchain_openai import OpenAIEmbeddings

    lc = OpenAIEmbeddings(model=server.model, base_url=server.url + "/v1", api_key="unused", max_retries=0)
    for ids in ([15339, 1917], [40188, 264, 1296]):  # as tiktoken's cl100k_base might encode short texts
        with pytest.raises(openai.BadRequestError, match="check_embedding_ctx_length=False"):
            lc.client.create(input=[ids], model=server.model)
    own = [e.ids for e in embedder.rust_tokenizer.encode_batch(["hello world"])]  # the model's own ids are still welcome
    got = lc.client.create(input=own, model=server.model, encoding_format="float").data[0].embedding
    assert cos_min([got], embedder.encode(["hello world"])) > MIN_COS
