"""The per-window step of a bulk job, chosen by the job's task: embed a window's texts (embedding.EmbedStep) or score
its (query, text) pairs (scoring.ScoreStep), and build its output rows.

Every runner reads windows (windows.py) and hands them to stepped_windows; what a step does is the only difference
between `engine embed` and `engine score`: the ledger, parts, resume and _SUCCESS are the same.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

import pyarrow as pa

from ..runtime.prefetch import prefetch
from .partstats import PartStats
from .windows import Window


class Step(Protocol):
    """One window in, its output rows (None when it has no row left) and its counts out."""

    model: object  # the Embedder or Reranker: its .device and .stats (EncodeStats) are read by the runner

    def __call__(self, w: Window) -> tuple[pa.Table | None, PartStats]: ...


def stepped_windows(items: Iterable[Window], step: Step) -> Iterator[tuple[Window, pa.Table | None, PartStats]]:
    """(window, its output rows or None, its counts) for each window, in order; the next windows are read and
    validated in a background thread meanwhile."""
    for w in prefetch(items, depth=2):
        table, stats = step(w)
        yield w, table, stats


def window_stats(w: Window) -> PartStats:
    """A window's counts before its model runs (rows, input rows, bad rows)."""
    return PartStats(rows=len(w.texts), input_rows=w.rows_in, skipped=w.skipped, emptied=w.emptied)
