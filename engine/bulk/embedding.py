"""The embedding step (step.py) of every embed job, local or on Ray: embed a window's texts and build its output rows.

Both executors read windows (windows.py), hand them to an EmbedStep (embedded_windows), and only differ in where the
rows go: the local runner queues them to its writer thread, a Ray actor writes its unit's temp file itself.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from ..runtime import Embedder
from .output.parts import convert, embedding_array
from .partstats import PartStats
from .plan import OutputPlan
from .step import stepped_windows, window_stats
from .windows import Window, windows

Calibrate = Callable[[NDArray[np.float32]], NDArray[np.float32]]  # first embeddings (N, D) -> int8 ranges (2, D)


def embed_window(embedder: Embedder, w: Window) -> tuple[NDArray[np.float32] | None, PartStats]:
    """The window's embeddings (N, D) float32 (None when it has no text left) and its counts."""
    stats = window_stats(w)
    if not w.texts:
        return None, stats
    tokens, truncated = embedder.stats.real_tokens, embedder.stats.truncated
    emb = embedder.encode(w.texts)
    stats.real_tokens = embedder.stats.real_tokens - tokens
    stats.truncated = embedder.stats.truncated - truncated
    return emb, stats


def window_table(w: Window, emb: NDArray[np.float32], plan: OutputPlan, ranges: NDArray[np.float32] | None,
                 schema: pa.Schema) -> pa.Table:
    """One window's output rows: ids, kept columns, and its embeddings (N, D) float32 in the stored dtype."""
    arrays = [w.ids] + (w.keep.columns if w.keep is not None else []) \
        + [embedding_array(convert(emb, plan.job.dtype, ranges), plan.job.dtype, plan.dim)]
    return pa.Table.from_arrays(arrays, schema=schema)


class EmbedStep:
    """Embed each window with one Embedder. int8 without ranges: calibrate(first embeddings) sets them before any row
    is converted."""

    def __init__(self, embedder: Embedder, plan: OutputPlan, ranges: NDArray[np.float32] | None,
                 calibrate: Calibrate | None = None) -> None:
        self.model, self.plan, self.ranges, self.calibrate = embedder, plan, ranges, calibrate
        self.schema: pa.Schema | None = None

    def __call__(self, w: Window) -> tuple[pa.Table | None, PartStats]:
        emb, stats = embed_window(self.model, w)
        if emb is None:
            return None, stats
        if self.ranges is None and self.plan.job.dtype == "int8":
            self.ranges = self.calibrate(emb)
        self.schema = self.schema or self.plan.part_schema(self.ranges)
        return window_table(w, emb, self.plan, self.ranges, dense_schema(self.schema)), stats


def dense_schema(schema: pa.Schema) -> pa.Schema:
    """The part schema without its `sparse` column (--sparse-model: sparse.HybridStep appends it to these rows)."""
    i = schema.get_field_index("sparse")
    return schema if i < 0 or schema.names[-1] != "sparse" else schema.remove(i)


def embedded_windows(items: Iterable[Window], embedder: Embedder, plan: OutputPlan, ranges: NDArray[np.float32] | None,
                     calibrate: Calibrate | None = None) -> Iterator[tuple[Window, pa.Table | None, PartStats]]:
    """(window, its output rows or None, its counts) for each window, in order, through an EmbedStep (the next
    windows are read and validated in a background thread meanwhile)."""
    return stepped_windows(items, EmbedStep(embedder, plan, ranges, calibrate))


def unit_windows(plan: OutputPlan, part: int, rows_per_file: list[int]) -> Iterator[Window]:
    """The windows of one part, reading only its rows (given each file's row count from the scan)."""
    R = plan.job.rows_per_part
    return windows(plan.job, plan.files, set(), plan.keep_schema, plan.id_type,
                   range(part * R, min((part + 1) * R, plan.total_rows)), rows_per_file)


def pending_windows(plan: OutputPlan, done: set[int]) -> Iterator[Window]:
    """The windows of every part not in done, in input order."""
    return windows(plan.job, plan.files, done, plan.keep_schema, plan.id_type)


def first_texts(plan: OutputPlan, done: set[int]) -> list[str] | None:
    """The texts of the first window left to embed (what int8 calibrates on), or None when none is left."""
    return next((w.texts for w in pending_windows(plan, done) if w.texts), None)
