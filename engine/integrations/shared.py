"""One loaded Embedder per model and runtime options, shared by every adapter that asks for the same one.

Adapters take either an Embedder or the keyword arguments of Embedder(...) (EmbedderConfig's fields; an unknown one
is a ConfigError naming the valid ones). Arguments are resolved to an export folder first (a model folder is exported
into the cache once), so two adapters naming the same model the same way share one onnxruntime session. The cache
holds Embedders weakly: a model is unloaded when no adapter uses it any more.
An Embedder handed in is registered under its own options, so a store that rebuilds its adapter from a saved config
(Chroma, LanceDB) finds it instead of loading a second copy.
"""
from __future__ import annotations

import dataclasses
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..config import EmbedderConfig, config_from_options
from ..runtime import Embedder
from ..runtime.models import resolve_export

_CACHE: "weakref.WeakValueDictionary[EmbedderConfig, Embedder]" = weakref.WeakValueDictionary()
_CACHE_LOCK = threading.Lock()
_ENCODE_LOCKS: "weakref.WeakKeyDictionary[Embedder, threading.Lock]" = weakref.WeakKeyDictionary()


def _key(cfg: EmbedderConfig, folder: Path) -> EmbedderConfig:
    """The cache key: the options with the model resolved to its export folder (where it came from no longer matters)."""
    return dataclasses.replace(cfg, model=str(Path(folder).resolve()), cache_dir=None)


def shared_embedder(embedder: Embedder | None, cfg: EmbedderConfig | None) -> Embedder:
    """embedder itself (registered for later lookups), or the shared Embedder for cfg, loaded on first request."""
    if embedder is not None:
        if not isinstance(embedder, Embedder):
            raise TypeError(f"embedder must be an engine.Embedder, got {type(embedder).__name__}; pass the model "
                            "as model=... instead")
        if cfg is not None:
            raise TypeError("pass either an Embedder or Embedder(...) arguments (model=, device=, ...), not both")
        with _CACHE_LOCK:
            _CACHE.setdefault(_key(embedder.config, embedder.model_dir), embedder)
        return embedder
    cfg = cfg or EmbedderConfig()
    key = _key(cfg, resolve_export(cfg))
    with _CACHE_LOCK:  # two adapters created at once load the model once
        found = _CACHE.get(key)
        if found is None:
            found = Embedder.from_config(dataclasses.replace(key, cache_dir=cfg.cache_dir))
            _CACHE[key] = found
        return found


def embedder_config(options: Mapping[str, Any], what: str = "the adapter") -> EmbedderConfig | None:
    """The EmbedderConfig of Embedder(...)'s keyword arguments (EmbedderConfig's fields; model may be a Path), or None
    when every one is left at its default. An unknown one is a ConfigError naming it and the valid ones."""
    options = dict(options)
    if options.get("model") is not None:
        options["model"] = str(options["model"])
    cfg = config_from_options(options, what)
    return None if cfg == EmbedderConfig() else cfg


def adapter_embedder(embedder: Embedder | None, options: Mapping[str, Any], truncate_dim: int | None,
                     what: str = "the adapter") -> tuple[Embedder, "Encoding"]:
    """What every adapter's constructor does with its arguments: the shared Embedder (the one given, or the one of
    Embedder(...)'s keyword arguments, `options`) and the checked Encoding. options["normalize"] is also the adapter's
    output option; it reaches the Embedder's config only when the adapter builds the Embedder itself.
    what: the adapter, as errors name it."""
    normalize = options.get("normalize")
    if embedder is not None:
        options = {k: v for k, v in options.items() if k != "normalize"}
    shared = shared_embedder(embedder, embedder_config(options, what))
    encoding = Encoding(truncate_dim, normalize)
    encoding.check(shared)
    return shared, encoding


def config_dict(embedder: Embedder) -> dict:
    """JSON-ready Embedder(...) arguments that rebuild this Embedder (the model as its export folder)."""
    d = dataclasses.asdict(embedder.config)
    d["model"] = str(Path(embedder.model_dir).resolve())
    return d


@dataclass(frozen=True)
class Encoding:
    """How an adapter calls its Embedder: Matryoshka truncate_dim and output normalization.

    normalize True: unit vectors always; None: the model's own (re-normalized after truncate_dim when the model
    normalizes, so dot-product and L2 stores stay equivalent to cosine); False: the model must not normalize.
    """

    truncate_dim: int | None = None
    normalize: bool | None = None

    def check(self, embedder: Embedder) -> None:
        if self.normalize is not None and not isinstance(self.normalize, bool):
            raise ValueError(f"normalize must be True, False or None, got {self.normalize!r}")
        if self.normalize is False and embedder.manifest["normalize"]:
            raise ValueError(f"{embedder.model_dir} was exported with normalization, so normalize=False cannot be "
                             "honoured; export the model with 'engine export MODEL DIR --no-normalize'")
        if self.truncate_dim is not None and (isinstance(self.truncate_dim, bool) or not isinstance(self.truncate_dim, int)
                                              or not 1 <= self.truncate_dim <= embedder.dim):
            raise ValueError(f"truncate_dim must be an integer in 1..{embedder.dim} (the model's width), "
                             f"got {self.truncate_dim!r}")

    def documents(self, embedder: Embedder, texts: list[str]) -> NDArray[np.float32]:
        """(N, D') float32 document vectors (the model's document prompt, if any)."""
        with encode_lock(embedder):
            return embedder.encode_document(texts, truncate_dim=self.truncate_dim,
                                            normalize_embeddings=self._renormalize(embedder))

    def queries(self, embedder: Embedder, texts: list[str]) -> NDArray[np.float32]:
        """(N, D') float32 query vectors (the model's query prompt, if any)."""
        with encode_lock(embedder):
            return embedder.encode_query(texts, truncate_dim=self.truncate_dim,
                                         normalize_embeddings=self._renormalize(embedder))

    def _renormalize(self, embedder: Embedder) -> bool:
        # (sentence-transformers leaves truncated vectors un-normalized unless asked; a search index wants unit ones)
        if self.normalize is not None:
            return self.normalize
        return bool(self.truncate_dim) and bool(embedder.manifest["normalize"])

    def dim(self, embedder: Embedder) -> int:
        return self.truncate_dim or embedder.dim


def encode_lock(embedder: Embedder) -> threading.Lock:
    """One lock per Embedder: concurrent calls (async batches, worker threads) run one at a time, since each
    already uses every core, instead of oversubscribing them."""
    with _CACHE_LOCK:
        lock = _ENCODE_LOCKS.get(embedder)
        if lock is None:
            lock = _ENCODE_LOCKS[embedder] = threading.Lock()
        return lock


def check_text_list(texts, what: str, error: type[Exception] = TypeError) -> list[str]:
    """texts as a list of str; otherwise `error` (TypeError, or the type the adapter's library raises for bad input)
    naming the first item that is not one."""
    if isinstance(texts, (str, bytes)) or not hasattr(texts, "__iter__"):
        got = f"a single {type(texts).__name__}; wrap it in a list" if isinstance(texts, (str, bytes)) else type(texts).__name__
        raise error(f"{what} takes a list of strings, got {got}")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise error(f"{what}: texts[{i}] is {type(t).__name__}, not str; every item must be a string")
    return texts
