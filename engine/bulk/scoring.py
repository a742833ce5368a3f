"""The scoring step of `engine score` (task "rerank"): a window's (query, text) pairs through a Reranker, into rows of
id, kept columns and score (the model's activation of its logits, or the logits with raw_scores)."""
from __future__ import annotations

import pyarrow as pa

from ..runtime import Reranker
from .output.parts import score_array
from .partstats import PartStats
from .plan import OutputPlan
from .step import window_stats
from .windows import Window


class ScoreStep:
    """Score each window's pairs with one Reranker; scores are (N,) float32 for one label, (N, L) for more."""

    def __init__(self, reranker: Reranker, plan: OutputPlan) -> None:
        self.model, self.plan = reranker, plan
        self.schema = plan.part_schema(None)

    def __call__(self, w: Window) -> tuple[pa.Table | None, PartStats]:
        stats, r = window_stats(w), self.model
        if not w.texts:
            return None, stats
        tokens, truncated = r.stats.real_tokens, r.stats.truncated
        logits = r.score_pairs(list(zip(w.queries, w.texts)))
        stats.real_tokens = r.stats.real_tokens - tokens
        stats.truncated = r.stats.truncated - truncated
        scores = r.activate(logits, raw=self.plan.job.raw_scores)
        arrays = [w.ids] + (w.keep.columns if w.keep is not None else []) + [score_array(scores)]
        return pa.Table.from_arrays(arrays, schema=self.schema), stats
