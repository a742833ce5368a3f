"""Which model a server runs: an Embedder, or a Reranker for a cross-encoder (task 'rerank'). The task comes from the
export's manifest; a model folder is a reranker when it is a cross-encoder (and is exported as one on first use)."""
from __future__ import annotations

from pathlib import Path

from export import read_manifest
from export.crossencoder import is_cross_encoder
from export.manifest import MANIFEST

from ..config import EmbedderConfig
from ..runtime import Embedder, Reranker
from ..runtime.models import engine_errors, resolve_export

Model = Embedder | Reranker


def served_task(cfg: EmbedderConfig) -> str:
    """'embed' or 'rerank': an export folder's manifest task; a model folder's kind (a cross-encoder reranks); a hub
    id's export (made on first use, cached) manifest task. The bundled default model embeds."""
    if cfg.model is None:
        return "embed"
    path = Path(str(cfg.model)).expanduser()
    with engine_errors():
        if path.is_dir() and (path / MANIFEST).is_file():
            return read_manifest(path, require_valid=False).get("task", "embed")
        if path.is_dir() and (path / "config.json").is_file():
            return "rerank" if is_cross_encoder(path) else "embed"
    return read_manifest(resolve_export(cfg), require_valid=False).get("task", "embed")


def open_model(cfg: EmbedderConfig) -> Model:
    """The Embedder or Reranker cfg names. A reranker refuses the options that only shape embeddings (pooling,
    normalize) when they were set, rather than ignoring them."""
    if served_task(cfg) == "rerank":
        return Reranker.from_config(cfg)
    return Embedder.from_config(cfg)


def task_of(model: Model) -> str:
    return "rerank" if isinstance(model, Reranker) else "embed"
