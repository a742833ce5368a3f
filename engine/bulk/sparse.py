"""The sparse steps (step.py) of `engine embed`: a SPLADE model's document-side vectors into a `sparse` column,
alone (--model SPARSE, task "sparse": SparseStep) or next to the dense embedding (--model DENSE --sparse-model
SPARSE: HybridStep, both models on every window of one read of the input).

The sparse model runs with the job's runtime options where they apply to it (device, backend, threads, cache); with
--sparse-model, --precision, --max-length, --max-batch-tokens, pooling and chunking stay the dense model's, and the
sparse model keeps its export's own.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa

from export.manifest import MANIFEST

from ..config import FIELD_NAMES, EmbedderConfig
from ..errors import ConfigError
from ..runtime import Embedder, SparseEncoder
from ..runtime.checks import check_folder_task, check_task
from ..runtime.heads import SparseRow
from ..runtime.models import load_export, resolve_export
from ..runtime.sparse_encoder import _first_use_pooling
from .embedding import EmbedStep, Calibrate
from .job import EmbedJob
from .output.sparse_column import sparse_array
from .partstats import PartStats
from .plan import OutputPlan
from .step import window_stats
from .windows import Window


def sparse_config(job: EmbedJob) -> EmbedderConfig:
    """The SparseEncoder options of job.sparse_model: the job's device, backend, threads and cache; its own rest."""
    cfg = job.embedder
    return EmbedderConfig(model=job.sparse_model, device=cfg.device, backend=cfg.backend, threads=cfg.threads,
                          cache_dir=cfg.cache_dir, verify_cache=cfg.verify_cache,
                          pooling=_first_use_pooling(job.sparse_model))


def check_sparse_model(job: EmbedJob) -> None:
    """Before any export or write: refuse a --sparse-model made for another task (a dense embedding model, a
    reranker), naming it and its task; hub ids are checked once exported (resolve_sparse)."""
    cfg = sparse_config(job)
    try:
        path = Path(cfg.model).expanduser()
        if (path / MANIFEST).is_file():
            check_task(load_export(path), path, "sparse")
        check_folder_task(cfg.model, "sparse", cfg.pooling)
    except ConfigError as err:
        raise ConfigError(f"--sparse-model: {err}") from err


def resolve_sparse(job: EmbedJob, log) -> tuple[EmbedJob, dict]:
    """(the job with sparse_model its export folder, that export's manifest): a SPLADE model folder is exported once
    into the cache; a model of another task is refused, naming it and its task."""
    cfg = sparse_config(job)
    try:
        folder = resolve_export(cfg, log=log)
        manifest = load_export(folder)
        check_task(manifest, folder, "sparse")
    except ConfigError as err:
        raise ConfigError(f"--sparse-model: {err}") from err
    return dataclasses.replace(job, sparse_model=str(folder)), manifest


def load_sparse_encoder(cfg: EmbedderConfig) -> SparseEncoder:
    """The SparseEncoder of an EmbedderConfig (its model: a sparse export folder or SPLADE model folder)."""
    options = {name: getattr(cfg, name) for name in FIELD_NAMES if name != "model"}
    return SparseEncoder(cfg.model, **options)


def sparse_window(encoder: SparseEncoder, w: Window, max_active_dims: int | None, stats: PartStats) -> list[SparseRow]:
    """The window's document-side sparse vectors, in row order; its tokens counted in stats."""
    tokens, truncated = encoder.stats.real_tokens, encoder.stats.truncated
    rows = encoder.encode_sparse(w.texts, max_active_dims=max_active_dims)
    stats.real_tokens += encoder.stats.real_tokens - tokens
    stats.truncated += encoder.stats.truncated - truncated
    return rows


class SparseStep:
    """Task "sparse": rows of id, kept columns and sparse."""

    def __init__(self, encoder: SparseEncoder, plan: OutputPlan) -> None:
        self.model, self.plan = encoder, plan
        self.schema = plan.part_schema(None)

    def __call__(self, w: Window) -> tuple[pa.Table | None, PartStats]:
        stats = window_stats(w)
        if not w.texts:
            return None, stats
        rows = sparse_window(self.model, w, self.plan.job.max_active_dims, stats)
        arrays = [w.ids] + (w.keep.columns if w.keep is not None else []) + [sparse_array(rows)]
        return pa.Table.from_arrays(arrays, schema=self.schema), stats


class HybridStep:
    """--sparse-model: the EmbedStep's rows (id, kept columns, embedding) plus sparse, from the same window.
    model is the Embedder (the runner's device and encode time are the dense model's; tokens count both models')."""

    def __init__(self, embedder: Embedder, encoder: SparseEncoder, plan: OutputPlan, ranges, calibrate: Calibrate) -> None:
        self.dense, self.encoder, self.plan = EmbedStep(embedder, plan, ranges, calibrate), encoder, plan
        self.model = embedder

    def __call__(self, w: Window) -> tuple[pa.Table | None, PartStats]:
        table, stats = self.dense(w)
        if table is None:
            return None, stats
        rows = sparse_window(self.encoder, w, self.plan.job.max_active_dims, stats)
        return pa.Table.from_arrays([*table.columns, sparse_array(rows)], schema=self.dense.schema), stats
