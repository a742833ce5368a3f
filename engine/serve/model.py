"""Which model a server runs: an Embedder, a Reranker for a cross-encoder (task 'rerank'), or a SparseEncoder for a
SPLADE model (task 'sparse'). The task comes from the export's manifest; a model folder is a reranker when it is a
cross-encoder, a sparse encoder when it is a SPLADE SparseEncoder folder (or a *ForMaskedLM folder given --pooling
splade), and is exported as one on first use."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from export import read_manifest
from export.crossencoder import is_cross_encoder
from export.manifest import MANIFEST
from export.options import SPLADE_POOLING
from export.sparse_folder import is_masked_lm, is_sparse_encoder

from ..config import EmbedderConfig
from ..runtime import Embedder, Reranker, SparseEncoder
from ..runtime.models import engine_errors, resolve_export
from .sparse_model import ServedSparse

Model = Embedder | Reranker | ServedSparse


def served_task(cfg: EmbedderConfig) -> str:
    """'embed', 'rerank' or 'sparse': an export folder's manifest task; a model folder's kind (a cross-encoder reranks,
    a SPLADE SparseEncoder folder or a *ForMaskedLM folder with pooling splade is sparse); a hub id's export (made on
    first use, cached) manifest task. The bundled default model embeds."""
    if cfg.model is None:
        return "embed"
    path = Path(str(cfg.model)).expanduser()
    with engine_errors():
        if path.is_dir() and (path / MANIFEST).is_file():
            return read_manifest(path, require_valid=False).get("task", "embed")
        if path.is_dir() and (path / "config.json").is_file():
            if is_cross_encoder(path):
                return "rerank"
            sparse = is_sparse_encoder(path) or (cfg.pooling == SPLADE_POOLING and is_masked_lm(path))
            return "sparse" if sparse else "embed"
    return read_manifest(resolve_export(cfg), require_valid=False).get("task", "embed")


def open_model(cfg: EmbedderConfig) -> Model:
    """The Embedder, Reranker or (served) SparseEncoder cfg names. A reranker or sparse encoder refuses the options
    that only shape dense embeddings (pooling, normalize) when they were set, rather than ignoring them."""
    task = served_task(cfg)
    if task == "rerank":
        return Reranker.from_config(cfg)
    if task == "sparse":
        options = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "model"}
        return ServedSparse(SparseEncoder(cfg.model, **options))
    return Embedder.from_config(cfg)


def task_of(model: Model) -> str:
    """'rerank', 'sparse' or 'embed'."""
    return "rerank" if isinstance(model, Reranker) else "sparse" if isinstance(model, ServedSparse) else "embed"
