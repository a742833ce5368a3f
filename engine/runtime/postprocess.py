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


def quantize(embeddings: NDArray[np.float32], precision: str, ranges: NDArray[np.float32] | None = None) -> NDArray:
    """Quantize like sentence_transformers.quantize_embeddings (same formulas, so outputs are interchangeable).

    int8/uint8 use per-dimension [min, max] ranges, from `ranges` (2, D) or else from these embeddings.
    """
    if precision not in OUTPUT_PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(OUTPUT_PRECISIONS)}")
    if precision == "float32":
        return embeddings.astype(np.float32, copy=False)
    if precision.endswith("binary"):
        packed = np.packbits(embeddings > 0, axis=-1)
        return (packed - 128).astype(np.int8) if precision == "binary" else packed
    if ranges is None:
        if len(embeddings) < 2:
            raise ValueError(f"{precision} quantization needs ranges or at least 2 embeddings to calibrate on")
        ranges = np.vstack([embeddings.min(0), embeddings.max(0)])
    starts = ranges[0].astype(np.float32)
    steps = (ranges[1].astype(np.float32) - starts) / 255
    steps = np.where(steps == 0, 1, steps)
    q = np.clip(np.floor((embeddings - starts) / steps), 0, 255)
    return q.astype(np.uint8) if precision == "uint8" else (q - 128).astype(np.int8)
