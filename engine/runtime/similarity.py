"""Similarity functions with sentence-transformers' names: cosine, dot, euclidean, manhattan (higher = more similar)."""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

SIMILARITY_FUNCTIONS = ("cosine", "dot", "euclidean", "manhattan")


def _matrix(x) -> NDArray[np.float32]:
    """(N, D) float32 from a vector, a matrix, a list of vectors or a torch tensor."""
    if hasattr(x, "detach"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float32)
    return a[None, :] if a.ndim == 1 else a


def similarity(a, b, fn: str = "cosine") -> NDArray[np.float32]:
    """(N, M) similarities between every row of a (N, D) and every row of b (M, D)."""
    a, b = _matrix(a), _matrix(b)
    if fn == "cosine":
        a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        return a @ b.T
    if fn == "dot":
        return a @ b.T
    if fn == "euclidean":
        return -np.sqrt(np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0))
    if fn == "manhattan":
        return -np.abs(a[:, None, :] - b[None, :, :]).sum(-1)
    raise ValueError(f"similarity function {fn!r} is not one of {', '.join(SIMILARITY_FUNCTIONS)}")


def similarity_pairwise(a, b, fn: str = "cosine") -> NDArray[np.float32]:
    """(N,) similarity of row i of a with row i of b."""
    a, b = _matrix(a), _matrix(b)
    if a.shape != b.shape:
        raise ValueError(f"similarity_pairwise needs two arrays of the same shape, got {a.shape} and {b.shape}")
    if fn == "cosine":
        return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    if fn == "dot":
        return (a * b).sum(1)
    if fn == "euclidean":
        return -np.linalg.norm(a - b, axis=1)
    if fn == "manhattan":
        return -np.abs(a - b).sum(1)
    raise ValueError(f"similarity function {fn!r} is not one of {', '.join(SIMILARITY_FUNCTIONS)}")
