"""Numpy pooling over token vectors, mask-aware; the reference for the in-graph pooling and for layer analyses."""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def cls_pool(hidden: NDArray, mask: NDArray) -> NDArray:
    """First token: hidden (B, T, H) -> (B, H)."""
    return hidden[:, 0]


def mean_pool(hidden: NDArray, mask: NDArray) -> NDArray:
    """Mean over valid tokens: hidden (B, T, H), mask (B, T) -> (B, H)."""
    m = mask[..., None].astype(hidden.dtype)
    return (hidden * m).sum(-2) / np.maximum(m.sum(-2), 1e-9)


def max_pool(hidden: NDArray, mask: NDArray) -> NDArray:
    """Max over valid tokens: hidden (B, T, H), mask (B, T) -> (B, H)."""
    return np.where(mask[..., None] > 0, hidden, -1e9).max(-2)


def mean_sqrt_len_pool(hidden: NDArray, mask: NDArray) -> NDArray:
    """Sum over valid tokens divided by sqrt(their count) (sentence-transformers 'mean_sqrt_len_tokens')."""
    m = mask[..., None].astype(hidden.dtype)
    return (hidden * m).sum(-2) / np.sqrt(np.maximum(m.sum(-2), 1e-9))


def last_token_pool(hidden: NDArray, mask: NDArray) -> NDArray:
    """The last valid token of each row, right padding (sentence-transformers 'lasttoken'): (B, T, H) -> (B, H)."""
    last = np.maximum(mask.sum(-1).astype(np.int64) - 1, 0)
    return hidden[np.arange(hidden.shape[0]), last]


def weighted_mean_pool(hidden: NDArray, mask: NDArray) -> NDArray:
    """Mean over valid tokens weighted by position 1..T (sentence-transformers 'weightedmean')."""
    w = mask.astype(hidden.dtype) * np.arange(1, hidden.shape[-2] + 1, dtype=hidden.dtype)
    return (hidden * w[..., None]).sum(-2) / np.maximum(w.sum(-1, keepdims=True), 1e-9)


def last_k_pool(hidden_states: NDArray, mask: NDArray, k: int, how: str) -> NDArray:
    """Combine the last k layers per token (mean, max, or concat along H), then mean over valid tokens.

    hidden_states (L+1, B, T, H) -> (B, H), or (B, k*H) for concat.
    """
    layers = hidden_states[-k:]
    if how == "concat":
        per_token = np.concatenate(list(layers), axis=-1)
    elif how == "mean":
        per_token = layers.mean(0)
    else:
        per_token = layers.max(0)
    return mean_pool(per_token, mask)
