"""Heads: what the runtime makes of one graph output of a padded batch, and how the rows of many batches are
gathered back into the caller's order.

The manifest names a model's heads (export.manifest.model_io: head name -> the embed.onnx output it reads); each head
here is a post-processing function on that output. A new kind of output (a score, sparse vocabulary weights) is one
entry in export.manifest.HEAD_OUTPUTS and one Head here: tokenization, batching, the backend and the gathering stay.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .batching import Batch

SparseRow = tuple[NDArray[np.int32], NDArray[np.float32]]  # (indices ascending, values): one text's sparse vector


@dataclass(frozen=True)
class Head:
    """post(batch, output) -> the batch's rows in batch order: an (B, ...) array, or a list of per-row arrays when
    ragged (rows of different shapes, such as per-token vectors)."""

    name: str
    ragged: bool
    post: Callable[[Batch, np.ndarray], object]


def pooled_rows(batch: Batch, out: NDArray[np.float32]) -> NDArray[np.float32]:
    """sentence_embedding (B, D) float32: already pooled (and normalized) in the graph."""
    return out


def token_rows(batch: Batch, out: NDArray[np.float32]) -> list[NDArray[np.float32]]:
    """token_embeddings (B, T, H) float32 -> one (t_i, H) array per row, padding removed."""
    lengths = batch.attention_mask.sum(1)
    return [out[r, : lengths[r]].copy() for r in range(len(batch.index))]


def score_rows(batch: Batch, out: NDArray[np.float32]) -> NDArray[np.float32]:
    """scores (B, num_labels) float32: a cross-encoder's logits per pair (the activation is applied after collect)."""
    return out


def sparse_rows(batch: Batch, out: NDArray[np.float32], max_active_dims: int | None = None) -> list[SparseRow]:
    """sparse_embedding (B, V) float32 -> per row (indices int32 ascending, values float32): the non-zero entries,
    with max_active_dims the largest that many (ties: the lower vocabulary index first)."""
    return [sparse_row(out[r], max_active_dims) for r in range(len(batch.index))]


def sparse_row(row: NDArray[np.float32], max_active_dims: int | None = None) -> SparseRow:
    """One (V,) vector's non-zero entries as (indices int32 ascending, values float32), the top max_active_dims by
    magnitude when set (sentence-transformers' select_max_active_dims)."""
    idx = np.flatnonzero(row)
    if max_active_dims is not None and len(idx) > max_active_dims:
        keep = np.argsort(-np.abs(row[idx]), kind="stable")[:max_active_dims]
        idx = np.sort(idx[keep])
    return idx.astype(np.int32), row[idx].astype(np.float32, copy=True)


HEADS = {"pooled": Head("pooled", False, pooled_rows), "tokens": Head("tokens", True, token_rows),
         "score": Head("score", False, score_rows), "sparse": Head("sparse", True, sparse_rows)}


def collect(results: Iterable[tuple[int, Batch, np.ndarray]], n: int, head: Head, row_shape: tuple[int, ...] = (),
            on_batch: Callable[[int], None] | None = None):
    """Every input's result in the caller's order, from batches that came in length order (window offset, batch,
    output): an (n, *row_shape) float32 array for a fixed-shape head, a list of n arrays for a ragged one."""
    out = [None] * n if head.ragged else np.empty((n, *row_shape), dtype=np.float32)
    for start, batch, raw in results:
        rows = head.post(batch, raw)
        if head.ragged:
            for r, i in enumerate(batch.index):
                out[start + i] = rows[r]
        else:
            out[start + batch.index] = rows
        if on_batch:
            on_batch(len(batch.index))
    return out
