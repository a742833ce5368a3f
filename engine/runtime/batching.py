"""Batching: sorting windows of texts, token-budget batch plans, and dynamic padding."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from .tokenize import tokenize

# A window: (offset of its first sequence in the caller's list, token ids of its sequences, their segment ids or None)
Window = tuple[int, list[NDArray[np.int64]], "list[NDArray[np.int64]] | None"]


@dataclass(frozen=True)
class Batch:
    """One padded batch and where its rows go in the caller's order."""

    index: NDArray[np.int64]  # (B,) positions of these rows in the window the batch came from
    input_ids: NDArray[np.int64]  # (B, T)
    attention_mask: NDArray[np.int64]  # (B, T)
    real_tokens: int  # non-pad tokens in the batch
    token_type_ids: NDArray[np.int64] | None = None  # (B, T) segment ids of text pairs; None: single texts (all 0)


def plan_batches(lengths: NDArray[np.int64], max_batch_tokens: int, max_batch_size: int | None = None,
                 pad_multiple: int = 1, max_pad_share: float = 0.05) -> list[NDArray[np.int64]]:
    """Group row indices into batches whose padded size (rows x longest, rounded) stays within max_batch_tokens.

    Rows are sorted longest first, so a batch's first row sets its padded length. A batch also closes before its
    padding would exceed max_pad_share of its tokens: with a large budget, length-sorted neighbours can still differ
    a lot, and padded tokens cost as much compute as real ones. A row longer than the budget gets a batch of its own.
    """
    order = np.argsort(-lengths, kind="stable")
    sorted_lens = lengths[order]
    batches, start, n = [], 0, len(order)
    while start < n:
        padded_len = _round_up(int(sorted_lens[start]), pad_multiple)
        rows = max(1, max_batch_tokens // max(padded_len, 1))
        if max_batch_size:
            rows = min(rows, max_batch_size)
        rows = min(rows, n - start)
        # Largest prefix whose padding share stays within the bound (waste grows monotonically along sorted rows).
        real = np.cumsum(sorted_lens[start:start + rows])
        share = 1.0 - real / (padded_len * np.arange(1, rows + 1))
        rows = max(1, int(np.searchsorted(share, max_pad_share, side="right")))
        batches.append(order[start:start + rows])
        start += rows
    return batches


def pad_batch(ids: list[NDArray[np.int64]], rows: NDArray[np.int64], pad_id: int, pad_multiple: int = 1,
              type_ids: list[NDArray[np.int64]] | None = None) -> Batch:
    """Right-pad the selected token id arrays (and segment ids, for text pairs) to the batch's longest, rounded up to
    pad_multiple.

    Every exported graph assumes right padding: 'lasttoken' pooling reads each row's last real token from the mask.
    """
    lens = np.fromiter((len(ids[i]) for i in rows), dtype=np.int64, count=len(rows))
    t = _round_up(int(lens.max()), pad_multiple)
    input_ids = np.full((len(rows), t), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), t), dtype=np.int64)
    segments = np.zeros((len(rows), t), dtype=np.int64) if type_ids is not None else None
    for r, i in enumerate(rows):
        input_ids[r, : lens[r]] = ids[i]
        mask[r, : lens[r]] = 1
        if segments is not None:
            segments[r, : lens[r]] = type_ids[i]
    return Batch(index=np.asarray(rows, dtype=np.int64), input_ids=input_ids, attention_mask=mask,
                 real_tokens=int(lens.sum()), token_type_ids=segments)


def _round_up(x: int, multiple: int) -> int:
    """x rounded up to a multiple (1 leaves it unchanged)."""
    return -(-x // multiple) * multiple


def text_windows(tok: Tokenizer, inputs: list, window: int, truncated: list[int]) -> Iterator[Window]:
    """Tokenize window by window (bounded memory); record each window's truncated-input count in `truncated`.

    inputs are texts, or (text, text) pairs (see tokenize.tokenize).
    """
    for start in range(0, len(inputs), window):
        tk = tokenize(tok, inputs[start:start + window])
        truncated.append(int(tk.truncated.sum()))
        yield start, tk.ids, tk.type_ids


def id_windows(ids: list[NDArray[np.int64]], window: int) -> Iterator[Window]:
    """Already tokenized single-text sequences (chunk windows), split into sorting windows."""
    for start in range(0, len(ids), window):
        yield start, ids[start:start + window], None


def padded_batches(windows: Iterable[Window], max_batch_tokens: int, max_batch_size: int | None, pad_id: int,
                   pad_multiple: int) -> Iterator[tuple[int, Batch]]:
    """Sort each window by token length, pack it under the token budget, pad; yield (window offset, batch)."""
    for start, ids, type_ids in windows:
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        for rows in plan_batches(lengths, max_batch_tokens, max_batch_size, pad_multiple):
            yield start, pad_batch(ids, rows, pad_id, pad_multiple, type_ids)
