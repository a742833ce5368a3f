"""One loaded SparseEncoder per model and runtime options, shared by every sparse adapter that asks for the same one.

As shared.py does for Embedders and shared_rerank.py for Rerankers: adapters take a SparseEncoder, or SparseEncoder(...)'s
keyword arguments (EmbedderConfig's fields, model= a SPLADE model folder or sparse export folder); the arguments are
resolved to an export folder first, so two adapters naming the same model the same way share one onnxruntime session,
held weakly (unloaded when no adapter uses it any more). The task is checked before anything is exported: an embedding
model or a cross-encoder is refused with the runtime's message, which names the model's task.
"""
from __future__ import annotations

import dataclasses
import threading
import weakref
from collections.abc import Mapping
from typing import Any

from ..config import EmbedderConfig
from ..errors import ConfigError
from ..runtime import Embedder, Reranker, SparseEncoder
from ..runtime.checks import check_folder_task
from ..runtime.models import resolve_export
# (SparseEncoder's own rules, so an adapter refuses what SparseEncoder(...) refuses, in its words, before any export)
from ..runtime.sparse_encoder import _check_active_dims, _first_use_pooling
from .shared import _key, check_text_list, embedder_config, encode_lock

_CACHE: "weakref.WeakValueDictionary[EmbedderConfig, SparseEncoder]" = weakref.WeakValueDictionary()
_CACHE_LOCK = threading.Lock()
_OTHER_TASKS = {Embedder: "an engine.Embedder (task 'embed': dense vectors); use it with the dense adapter "
                          "(engine.integrations.langchain.EngineEmbeddings, llamaindex.EngineEmbedding)",
                Reranker: "an engine.Reranker (task 'rerank': it scores text pairs); use it with the reranker adapters"}


def shared_sparse_encoder(encoder: SparseEncoder | None, cfg: EmbedderConfig | None) -> SparseEncoder:
    """encoder itself (registered for later lookups), or the shared SparseEncoder for cfg, loaded on first request."""
    if encoder is not None:
        if not isinstance(encoder, SparseEncoder):
            what = next((v for k, v in _OTHER_TASKS.items() if isinstance(encoder, k)), type(encoder).__name__)
            raise TypeError(f"encoder must be an engine.SparseEncoder (a SPLADE model), got {what}; pass a SPLADE "
                            "model as model=... instead")
        if cfg is not None:
            raise TypeError("pass either a SparseEncoder or SparseEncoder(...) arguments (model=, device=, ...), not both")
        with _CACHE_LOCK:
            _CACHE.setdefault(_key(encoder.config, encoder.model_dir), encoder)
        return encoder
    cfg = cfg or EmbedderConfig()
    if cfg.normalize is not None or cfg.pooling not in (None, "splade"):
        raise ConfigError("pooling and normalize shape dense embeddings; a sparse encoder pools with SPLADE (max or "
                          "sum, as its export says): leave them out")
    cfg = dataclasses.replace(cfg, pooling=cfg.pooling or _first_use_pooling(cfg.model))
    check_folder_task(cfg.model, "sparse", cfg.pooling)  # a dense model (or none) is refused before any export runs
    key = _key(cfg, resolve_export(cfg))
    with _CACHE_LOCK:  # two adapters created at once load the model once
        found = _CACHE.get(key)
        if found is None:
            options = {k: v for k, v in dataclasses.asdict(key).items() if k != "model"}
            found = SparseEncoder(key.model, **{**options, "cache_dir": cfg.cache_dir})
            _CACHE[key] = found
        return found


def adapter_sparse_encoder(encoder: SparseEncoder | None, options: Mapping[str, Any], max_active_dims,
                           what: str) -> tuple[SparseEncoder, int | None]:
    """What every sparse adapter's constructor does with its arguments: the shared SparseEncoder (the one given, or
    the one of SparseEncoder(...)'s keyword arguments, `options`) and the checked max_active_dims (None: the model's
    own). what: the adapter, as errors name it."""
    max_active_dims = _check_active_dims(max_active_dims)
    return shared_sparse_encoder(encoder, embedder_config(options, what)), max_active_dims


def sparse_vectors(encoder: SparseEncoder, texts, *, query: bool, max_active_dims: int | None,
                   what: str) -> list[tuple[list[int], list[float]]]:
    """(indices, values) as Python lists per text, in order, as encode_query (query=True: the query side, the
    static weights of an inference-free model) or encode_document would give them; [] for no texts. texts must be a
    list of strings (a TypeError names the first that is not one). Calls on one SparseEncoder run one at a time."""
    texts = check_text_list(texts, what)
    if not texts:
        return []
    with encode_lock(encoder):
        rows = encoder.encode_sparse(texts, query=query, max_active_dims=max_active_dims)
    return [(indices.tolist(), values.tolist()) for indices, values in rows]


def check_query(text, what: str) -> str:
    """One query string, or a TypeError."""
    if not isinstance(text, str):
        raise TypeError(f"{what} takes one string, got {type(text).__name__}")
    return text
