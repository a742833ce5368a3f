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


def tei_tokens_body(per_text: list) -> bytes:
    """TEI's /embed_all answer: per text, a (t, H) array of token vectors (special tokens included, padding not)."""
    return orjson.dumps(per_text, option=_NUMPY)


def sparse_body(rows: list) -> bytes:
    """TEI's /embed_sparse answer: per text, its non-zero entries as [{"index", "value"}], ascending index (each
    value float32's shortest repr)."""
    return orjson.dumps([[{"index": i, "value": v} for i, v in zip(idx.tolist(), values)] for idx, values in rows],
                        option=_NUMPY)


def similarity_body(vectors: NDArray[np.float32]) -> bytes:
    """TEI's /similarity answer: the cosine of the first vector (source_sentence) with each of the others."""
    unit = l2_normalize(np.asarray(vectors, dtype=np.float32))
    return orjson.dumps(unit[1:] @ unit[0], option=_NUMPY)


def model_object(model: str, created: int, owned_by: str | None, stats: dict | None, backend: str = "onnxruntime",
                 capabilities: tuple[str, ...] = ("embed",)) -> dict:
    """One model as OpenAI lists it (id, object, created, owned_by) plus the fields infinity's client requires
    (stats, backend, capabilities: what the served model does, in infinity's words). owned_by None leaves it out:
    infinity's client accepts only 'infinity' there."""
    out = {"id": model, "object": "model", "created": created}
    if owned_by is not None:
        out["owned_by"] = owned_by
    if stats is not None:
        out |= {"stats": stats, "backend": backend, "capabilities": list(capabilities)}
    return out


def models_body(model: dict) -> bytes:
    return orjson.dumps({"object": "list", "data": [model]})


def tokens_body(encodings: list, texts: list[str]) -> bytes:
    """TEI's /tokenize answer: per text, its tokens as {id, text, special, start, stop}; start and stop are UTF-8 byte
    offsets into the text (with its prompt) as TEI gives them, and null for special tokens, whose text is the token."""
    out = []
    for enc, text in zip(encodings, texts):
        raw = text.encode("utf-8")
        # char offset -> byte offset (tokenizers' Python binding gives char offsets; TEI gives bytes)
        byte_at = np.cumsum([0] + [len(c.encode("utf-8")) for c in text]) if len(raw) != len(text) else None
        tokens = []
        for tid, (a, b), special, tok in zip(enc.ids, enc.offsets, enc.special_tokens_mask, enc.tokens):
            if special:
                tokens.append({"id": tid, "text": tok, "special": True, "start": None, "stop": None})
                continue
            if byte_at is not None:
                a, b = int(byte_at[a]), int(byte_at[b])
            tokens.append({"id": tid, "text": raw[a:b].decode("utf-8", errors="replace"), "special": False,
                           "start": a, "stop": b})
        out.append(tokens)
    return orjson.dumps(out)
