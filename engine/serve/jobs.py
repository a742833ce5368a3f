"""One request's work in the batcher: its sequences, where their results go, and how it ends (results, or the
error of a sequence the model failed on)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ..runtime import Sequences
from ..runtime.pairs import PairSequences


class SequenceFailed(Exception):
    """The model failed on one sequence run alone (the batch it shared with others was split to find it): its
    request fails, naming the input; the others get their vectors."""

    def __init__(self, index: int, cause: BaseException) -> None:
        super().__init__(f"sequence {index}: {type(cause).__name__}: {cause}")
        self.index, self.cause = index, cause


@dataclass(eq=False)
class Job:
    """One request's sequences and where their vectors go."""

    seqs: Sequences | PairSequences  # a reranker's jobs hold pair sequences (with segment ids)
    lengths: NDArray[np.int64]  # (S,) tokens per sequence
    order: NDArray[np.int64]  # (S,) sequence indices, longest first: the order they are scheduled in
    out: object  # (S, D) float32 for the pooled head, a list of S (t, H) arrays for the tokens head; filled as batches finish
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    submitted: float
    head: str = "pooled"
    next: int = 0  # position in order of the first sequence not yet scheduled
    done: int = 0  # sequences embedded
    cancelled: bool = False
    started: bool = False
    held_tokens: int = 0  # admitted tokens not yet embedded or dropped
    error: BaseException | None = field(default=None, repr=False)


def resolve(job: Job) -> None:
    """On the event loop: hand the vectors (or the error) to the waiting request."""
    if job.future.done():
        return
    if job.error is not None:
        job.future.set_exception(job.error)
    else:
        job.future.set_result(job.out)
