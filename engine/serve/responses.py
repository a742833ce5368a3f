"""Vectors -> response bodies: Matryoshka truncation and normalization, then orjson (numpy arrays serialize natively)."""
from __future__ import annotations

import base64

import numpy as np
import orjson
from numpy.typing import NDArray

from ..runtime.postprocess import l2_normalize
from .schemas import EmbedRequest

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def shape(vectors: NDArray[np.float32], req: EmbedRequest) -> NDArray[np.float32]:
    """(N, D) -> (N, d): keep the first `dimensions`, then L2-normalize when asked (sentence-transformers' truncate_dim
    followed by normalize_embeddings)."""
    if req.dimensions is not None:
        vectors = vectors[:, : req.dimensions]
    if req.normalize:
        vectors = l2_normalize(vectors)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def openai_body(vectors: NDArray[np.float32], req: EmbedRequest, model: str, tokens: int) -> bytes:
    """OpenAI's list object; base64 is little-endian float32, as OpenAI sends it."""
    vectors = shape(vectors, req)
    if req.base64:
        rows = [base64.b64encode(v.astype("<f4", copy=False).tobytes()).decode("ascii") for v in vectors]
    else:
        rows = list(vectors)  # (d,) float32 views; orjson writes each float32's shortest repr
    data = [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(rows)]
    return orjson.dumps({"object": "list", "data": data, "model": model,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}, option=_NUMPY)


def tei_body(vectors: NDArray[np.float32], req: EmbedRequest) -> bytes:
    """TEI's answer: a JSON array of arrays."""
    return orjson.dumps(shape(vectors, req), option=_NUMPY)
