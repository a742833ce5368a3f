"""The encoding stages: plan and pad batches in a background thread (pre), run each batch (core); heads.collect
gathers the rows back in order (post).

run_stages knows nothing of backends: it takes a function that runs one padded batch, so the batching, ordering
and threading can be tested with a fake one.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from .batching import Batch, Window, padded_batches
from .prefetch import prefetch

RunFn = Callable[[Batch], np.ndarray]  # one padded batch -> its output, first axis = the batch's rows


@dataclass
class EncodeStats:
    """Cumulative counters since creation or reset_stats()."""

    texts: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    truncated: int = 0
    batches: int = 0
    seconds: float = 0.0  # wall time of the encoding loops
    session_seconds: float = 0.0  # of which inside the run function (onnxruntime); the rest is tokenize/pad/scatter wait

    @property
    def pad_overhead(self) -> float:
        """Share of computed tokens that were padding."""
        return 1.0 - self.real_tokens / self.padded_tokens if self.padded_tokens else 0.0


@dataclass(frozen=True)
class BatchPlan:
    """How sequences are packed: padded-token budget, optional row cap, pad id, and pad-length multiple."""

    max_batch_tokens: int
    max_batch_size: int | None
    pad_id: int
    pad_multiple: int = 1


def run_stages(windows: Iterable[Window], run: RunFn, plan: BatchPlan, stats: EncodeStats) -> Iterator[tuple[int, Batch, np.ndarray]]:
    """Run every padded batch (prepared ahead in a background thread); yield (window offset, batch, output)."""
    started = time.perf_counter()
    batches = padded_batches(windows, plan.max_batch_tokens, plan.max_batch_size, plan.pad_id, plan.pad_multiple)
    try:
        for start, batch in prefetch(batches):
            t = time.perf_counter()
            out = run(batch)
            stats.session_seconds += time.perf_counter() - t
            stats.real_tokens += batch.real_tokens
            stats.padded_tokens += batch.input_ids.size
            stats.batches += 1
            yield start, batch, out
    finally:
        stats.seconds += time.perf_counter() - started
