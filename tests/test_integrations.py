"""Adapter behaviour inside the real frameworks: one shared model, prompts, truncate_dim / normalize / precision
passed through, bad input refused as each library expects, async calls that leave the event loop free, extras."""
from __future__ import annotations

import asyncio
import gc
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ConfigError, MissingExtraError

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["The assert statement inserts debugging assertions.", "Open the file in text mode, write to it, and close it.",
         "Return a new sorted list from the items in iterable."]


@pytest.fixture(scope="module")
def adapters():
    from lancedb.embeddings import get_registry

    from engine.integrations import chroma, langchain, lancedb, llamaindex

    return {"langchain": langchain.EngineEmbeddings, "llamaindex": llamaindex.EngineEmbedding,
            "chroma": chroma.EngineEmbeddingFunction, "lancedb": get_registry().get(lancedb.NAME).create}


def _docs(name: str, ad, texts: list[str]) -> np.ndarray:
    """Document vectors through each framework's own entry point."""
    if name == "langchain":
        return np.array(ad.embed_documents(texts))
    if name == "llamaindex":
        return np.array(ad.get_text_embedding_batch(texts))
    if name == "chroma":
        return np.array(ad(texts))
    return np.array(ad.compute_source_embeddings(texts))


def _query(name: str, ad, text: str) -> np.ndarray:
    if name == "langchain":
        return np.array(ad.embed_query(text))
    if name == "llamaindex":
        return np.array(ad.get_query_embedding(text))
    if name == "chroma":
        return np.array(ad.embed_query([text])[0])
    return np.array(ad.compute_query_embeddings(text)[0])


def test_one_model_shared_by_every_adapter(adapters, minilm_export, embedder):
    built = [make(model=str(minilm_export), device="cpu") for make in adapters.values()]
    assert len({id(a.embedder) for a in built}) == 1
    # a saved config (Chroma / LanceDB reopening a collection or table) finds the model already loaded
    chroma = adapters["chroma"](embedder)
    assert type(chroma).build_from_config(json.loads(json.dumps(chroma.get_config()))).embedder is built[0].embedder
    lance = adapters["lancedb"](embedder=embedder)
    assert type(lance).create(**json.loads(json.dumps(lance.safe_model_dump()))).embedder is built[0].embedder
    other = adapters["langchain"](model=str(minilm_export), device="cpu", threads=1)  # other options: its own model
    assert other.embedder is not built[0].embedder
    for name, ad in zip(adapters, built):
        np.testing.assert_allclose(_docs(name, ad, TEXTS), embedder.encode(TEXTS), atol=1e-6)


def test_the_cache_lets_an_unused_model_go(adapters, minilm_export):
    from engine.integrations import shared

    ad = adapters["langchain"](model=str(minilm_export), device="cpu", max_batch_tokens=1234)
    key = next(k for k, v in shared._CACHE.items() if v is ad.embedder)
    del ad
    gc.collect()
    assert key not in shared._CACHE


def test_query_and_document_prompts(adapters, minilm_export, tmp_path):
    """A model whose metadata defines E5-style prompts: queries and documents get each their own."""
    folder = shutil.copytree(minilm_export, tmp_path / "prompted")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["prompts"] = {"query": "query: ", "document": "passage: "}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    from engine import Embedder

    plain = Embedder(folder, device="cpu")
    want_q = plain.encode("query: " + TEXTS[0], prompt="")
    want_d = plain.encode(["passage: " + t for t in TEXTS], prompt="")
    assert not np.allclose(want_q, plain.encode(TEXTS[0], prompt=""), atol=1e-3)
    for name, make in adapters.items():
        ad = make(model=str(folder), device="cpu")
        np.testing.assert_allclose(_query(name, ad, TEXTS[0]), want_q, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(_docs(name, ad, TEXTS), want_d, atol=1e-6, err_msg=name)


def test_truncate_dim_normalize_and_precision_pass_through(adapters, embedder, minilm_export):
    full = embedder.encode(TEXTS)
    want = full[:, :128] / np.linalg.norm(full[:, :128], axis=1, keepdims=True)
    for name, make in adapters.items():
        ad = make(embedder=embedder, truncate_dim=128) if name == "lancedb" else make(embedder, truncate_dim=128)
        got = _docs(name, ad, TEXTS)
        assert got.shape == (3, 128), name
        np.testing.assert_allclose(got, want, atol=1e-6, err_msg=name)  # Matryoshka: truncated, then unit length
        with pytest.raises(ValueError, match="truncate_dim must be an integer in 1..384"):
            make(embedder=embedder, truncate_dim=999) if name == "lancedb" else make(embedder, truncate_dim=999)
        with pytest.raises(ValueError, match="normalize=False"):
            make(embedder=embedder, normalize=False) if name == "lancedb" else make(embedder, normalize=False)
        # precision (and every Embedder argument) reaches the Embedder: this export is fp32, so int8 is refused
        with pytest.raises(ConfigError, match="precision='fp32' but precision='int8'"):
            make(model=str(minilm_export), precision="int8")
    assert adapters["lancedb"](embedder=embedder, truncate_dim=64).ndims() == 64
    with pytest.raises(TypeError, match="either an Embedder or Embedder"):
        adapters["langchain"](embedder, device="cpu")
    with pytest.raises(TypeError, match="either an Embedder or Embedder"):
        adapters["lancedb"](embedder=embedder, device="cpu")


def test_bad_input_is_refused_the_way_each_library_expects(adapters, embedder, tmp_path):
    lc = adapters["langchain"](embedder)
    assert lc.embed_documents([]) == []
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        lc.embed_documents(["ok", 3])
    with pytest.raises(TypeError, match="takes a list of strings"):
        lc.embed_documents("one string")
    with pytest.raises(TypeError, match="one string"):
        lc.embed_query(None)
    li = adapters["llamaindex"](embedder)
    with pytest.raises(TypeError, match=r"texts\[0\] is NoneType"):
        li.get_text_embedding_batch([None])
    ch = adapters["chroma"](embedder)
    with pytest.raises(ValueError, match=r"texts\[1\] is bytes, not str"):
        ch(["ok", b"bytes"])
    with pytest.raises(ValueError, match="non-empty"):  # Chroma's own check of an empty result
        ch([])
    import chromadb

    collection = chromadb.EphemeralClient().get_or_create_collection("bad", embedding_function=ch)
    with pytest.raises(ValueError):
        collection.add(ids=["a"], documents=[7])
    # LanceDB: a null text gets no vector, and the table's on_bad_vectors policy decides
    import lancedb
    from lancedb.pydantic import LanceModel, Vector

    func = adapters["lancedb"](embedder=embedder)

    class Doc(LanceModel):
        text: str | None = func.SourceField()
        vector: Vector(func.ndims()) = func.VectorField()

    table = lancedb.connect(tmp_path / "lance").create_table("docs", schema=Doc)
    with pytest.raises(Exception, match="(?i)vector"):
        table.add([{"text": "fine"}, {"text": None}])
    table.add([{"text": "fine"}, {"text": None}], on_bad_vectors="drop")
    assert table.count_rows() == 1
    with pytest.raises(TypeError, match="text 0 is int"):
        func.compute_source_embeddings([5])


def _ticks_during(coro_factory):
    """Run the coroutine beside a 1 ms ticker; (result, ticks while it ran)."""
    async def main():
        ticks = 0
        done = False

        async def ticker():
            nonlocal ticks
            while not done:
                await asyncio.sleep(0.001)
                ticks += 1
        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.01)
        start = ticks
        result = await coro_factory()
        done = True
        await task
        return result, ticks - start
    return asyncio.run(main())


def test_async_calls_leave_the_event_loop_free(adapters, embedder, real_texts):
    texts = real_texts[:120]
    lc = adapters["langchain"](embedder)
    t = time.perf_counter()
    want = np.array(lc.embed_documents(texts))
    sync_seconds = time.perf_counter() - t
    li = adapters["llamaindex"](embedder)
    for name, factory in {"langchain": lambda: lc.aembed_documents(texts),
                          "llamaindex": lambda: li.aget_text_embedding_batch(texts)}.items():
        got, ticks = _ticks_during(factory)
        np.testing.assert_allclose(np.array(got), want, atol=1e-6, err_msg=name)
        # a blocked loop would tick 0 times; a free one ticks many times while the model runs in a thread
        assert ticks >= 10, (name, ticks, sync_seconds)
    q, _ = _ticks_during(lambda: li.aget_query_embedding(texts[0]))
    np.testing.assert_allclose(q, embedder.encode(texts[0]), atol=1e-6)
    q, _ = _ticks_during(lambda: lc.aembed_query(texts[0]))
    np.testing.assert_allclose(q, embedder.encode(texts[0]), atol=1e-6)


def test_chroma_refuses_a_model_change_on_an_existing_collection(adapters, embedder):
    ch = adapters["chroma"](embedder)
    old = ch.get_config()
    new = json.loads(json.dumps(old))
    new["embedder"]["model"] = "/elsewhere"
    with pytest.raises(ValueError, match="create a new collection"):
        ch.validate_config_update(old, new)
    with pytest.raises(ValueError, match="unknown option 'modle'; the options are EmbedderConfig's fields: model, "):
        type(ch).build_from_config({"embedder": {"modle": "x"}})


def test_options_are_embedder_config_fields_and_unknown_ones_the_shared_error(adapters, embedder):
    import dataclasses

    from engine.config import EmbedderConfig
    from engine.integrations import lancedb

    for name, make in adapters.items():  # refused before any model is loaded
        with pytest.raises(ConfigError, match="unknown option 'devcie'; the options are EmbedderConfig's fields: model,"):
            make(devcie="cpu")
    with pytest.raises(ConfigError, match="unknown option 'devcie'"):
        adapters["lancedb"](embedder=embedder, devcie="cpu")
    with pytest.raises(ConfigError, match="unknown option 'devcie'"):
        adapters["langchain"](embedder, devcie="cpu")
    # LanceDB's pydantic fields (saved in the table's metadata) are EmbedderConfig's, with its defaults
    model_fields = lancedb.EngineEmbeddings.model_fields
    for f in dataclasses.fields(EmbedderConfig):
        assert model_fields[f.name].default == f.default and model_fields[f.name].description == f.metadata["help"]


def test_a_missing_framework_names_the_extra(monkeypatch):
    monkeypatch.delitem(sys.modules, "engine.integrations.langchain", raising=False)
    monkeypatch.setitem(sys.modules, "langchain_core.embeddings", None)  # as if langchain-core were not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'embedding-engine\[langchain\]'"):
        import engine.integrations.langchain  # noqa: F401
    monkeypatch.delitem(sys.modules, "engine.integrations.langchain", raising=False)


def test_import_engine_stays_light():
    code = ("import sys, engine, engine.integrations; "
            "print([m for m in sys.modules if m.split('.')[0] in ('langchain_core', 'llama_index', 'chromadb', 'lancedb', 'torch')])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
