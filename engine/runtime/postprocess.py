"""Numpy post-processing of pooled embeddings: normalization, chunk aggregation, truncation, quantization."""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

OUTPUT_PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")


def l2_normalize(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """Row-wise L2 normalization (zero rows stay zero), as torch.nn.functional.normalize."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def aggregate_chunks(chunks: NDArray[np.float32], owner: NDArray[np.int64], weights: NDArray[np.float32],
                     n_texts: int) -> NDArray[np.float32]:
    """Token-weighted mean of chunk vectors per text: chunks (C, D), owner (C,), weights (C,) -> (n_texts, D)."""
    out = np.zeros((n_texts, chunks.shape[1]), dtype=np.float64)
    np.add.at(out, owner, chunks.astype(np.float64) * weights[:, None])
    total = np.bincount(owner, weights=weights, minlength=n_texts)
    return (out / np.maximum(total, 1e-12)[:, None]).astype(np.float32)


def quantize(embeddings, precision: str, ranges: NDArray[np.float32] | None = None):
    """Quantize like sentence_transformers.quantize_embeddings, step for step (the same float32 arithmetic, so the
    same floats give the same codes).

    int8/uint8 use per-dimension [min, max] ranges, from `ranges` (2, D) or else from these embeddings. A list of
    (t_i, D) matrices (per-token vectors) is quantized with one calibration over all of them, into a list.
    """
    if precision not in OUTPUT_PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(OUTPUT_PRECISIONS)}")
    if isinstance(embeddings, list):
        if not embeddings:
            return []
        if precision.endswith("int8") and ranges is None:
            joined = np.concatenate(embeddings, axis=0)
            ranges = quantization_ranges(joined, precision) if len(joined) else None
        return [quantize(m, precision, ranges) for m in embeddings]
    embeddings = np.asarray(embeddings)
    if embeddings.dtype in (np.uint8, np.int8):
        raise ValueError("embeddings to quantize must be float, not int8 or uint8")
    if embeddings.ndim == 2 and embeddings.shape[0] == 0:  # nothing to calibrate or pack: the empty answer's shape
        dim = embeddings.shape[1]
        width = (dim + 7) // 8 if precision.endswith("binary") else dim
        return np.zeros((0, width), dtype=np.float32 if precision == "float32" else
                        np.int8 if precision in ("int8", "binary") else np.uint8)
    if precision == "float32":
        return embeddings.astype(np.float32, copy=False)
    if precision.endswith("int8"):
        if ranges is None:
            ranges = quantization_ranges(embeddings, precision)
        ranges = np.asarray(ranges).astype(np.float32, copy=False)
        starts = ranges[0, :]
        steps = (ranges[1, :] - starts) / 255
        steps = np.where(steps == 0, 1, steps)
        q = np.clip(np.floor((embeddings - starts) / steps), 0, 255)
        return q.astype(np.uint8) if precision == "uint8" else (q - 128).astype(np.int8)
    packed = np.packbits(embeddings > 0, axis=-1)
    return (packed - 128).astype(np.int8) if precision == "binary" else packed


def quantization_ranges(embeddings: NDArray, precision: str) -> NDArray:
    """(2, D) per-dimension min and max of the embeddings, which must be at least two (sentence-transformers' rule)."""
    if embeddings.ndim == 1 or embeddings.shape[0] == 1:
        raise ValueError(f"{precision} quantization needs ranges or at least 2 embeddings to calibrate on: cannot "
                         "compute quantization ranges from a single embedding")
    return np.vstack((np.min(embeddings, axis=0), np.max(embeddings, axis=0)))
