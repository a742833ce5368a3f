"""One loaded Reranker per model and runtime options, shared by every reranker adapter that asks for the same one.

As shared.py does for Embedders: adapters take a Reranker, or Reranker(...)'s keyword arguments (EmbedderConfig's
fields, model= a cross-encoder's model folder or export folder); the arguments are resolved to an export folder first,
so two adapters naming the same model the same way share one onnxruntime session, held weakly (unloaded when no
adapter uses it any more). The task is checked before anything is exported: an embedding model is refused with the
runtime's message.
"""
from __future__ import annotations

import dataclasses
import threading
import weakref
from collections.abc import Mapping
from typing import Any

from ..config import EmbedderConfig
from ..errors import ConfigError
from ..runtime import Reranker
from ..runtime.checks import check_folder_task
from ..runtime.models import resolve_export
from .shared import _key, embedder_config, encode_lock

_CACHE: "weakref.WeakValueDictionary[EmbedderConfig, Reranker]" = weakref.WeakValueDictionary()
_CACHE_LOCK = threading.Lock()
# Options that shape an embedding: refused before a first-use export runs (Reranker refuses them too, in these words).
_EMBED_ONLY = ("pooling", "normalize")


def shared_reranker(reranker: Reranker | None, cfg: EmbedderConfig | None) -> Reranker:
    """reranker itself (registered for later lookups), or the shared Reranker for cfg, loaded on first request."""
    if reranker is not None:
        if not isinstance(reranker, Reranker):
            raise TypeError(f"reranker must be an engine.Reranker, got {type(reranker).__name__}; pass the "
                            "cross-encoder as model=... instead")
        if cfg is not None:
            raise TypeError("pass either a Reranker or Reranker(...) arguments (model=, device=, ...), not both")
        with _CACHE_LOCK:
            _CACHE.setdefault(_key(reranker.config, reranker.model_dir), reranker)
        return reranker
    cfg = cfg or EmbedderConfig()
    check_folder_task(cfg.model, "rerank")  # an embedding model (or none) is refused before any export runs
    for name in _EMBED_ONLY:
        if getattr(cfg, name) is not None:
            raise ConfigError(f"{name} shapes embeddings; a reranker scores text pairs and has none: leave it out")
    key = _key(cfg, resolve_export(cfg))
    with _CACHE_LOCK:  # two adapters created at once load the model once
        found = _CACHE.get(key)
        if found is None:
            found = Reranker.from_config(dataclasses.replace(key, cache_dir=cfg.cache_dir))
            _CACHE[key] = found
        return found


def adapter_reranker(reranker: Reranker | None, options: Mapping[str, Any], what: str) -> Reranker:
    """What every reranker adapter's constructor does with its arguments: the shared Reranker (the one given, or the
    one of Reranker(...)'s keyword arguments, `options`), checked to give one score per pair. what: the adapter, as
    errors name it."""
    shared = shared_reranker(reranker, embedder_config(options, what))
    if shared.num_labels != 1:
        raise ConfigError(f"{shared.model_dir} scores {shared.num_labels} labels per pair; {what} ranks documents by "
                          "one score, so it needs a one-label cross-encoder (use Reranker.predict for the labels)")
    return shared


def check_top_n(top_n, what: str) -> int | None:
    """top_n as an integer >= 1, or None (every document, sorted)."""
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
        raise ValueError(f"{what}: top_n must be None (every document) or an integer >= 1, got {top_n!r}")
    return top_n


def ranked(reranker: Reranker, query: str, texts: list[str], top_n: int | None) -> list[tuple[int, float]]:
    """(index in texts, score), best first, the top_n of them (None: all), as Reranker.rank orders them; [] for no
    texts. Calls on one Reranker run one at a time (each already uses every core)."""
    if not texts:
        return []
    with encode_lock(reranker):
        return [(r["corpus_id"], r["score"]) for r in reranker.rank(query, texts, top_k=top_n)]


def pair_scores(reranker: Reranker, pairs: list[tuple[str, str]]) -> list[float]:
    """One score per (query, document) pair, as CrossEncoder.predict gives them; [] for no pairs."""
    pairs = list(pairs)
    if not pairs:
        return []
    with encode_lock(reranker):
        return [float(s) for s in reranker.predict(pairs, convert_to_numpy=True).reshape(-1)]
