"""Scores -> the rerank routes' bodies: TEI's list of {index, score, text?} and Cohere's / Jina's {id, results:
[{index, relevance_score, document?}], meta, model, usage}, each sorted by score, highest first."""
from __future__ import annotations

import uuid

import numpy as np
import orjson

from .rerank_schemas import RerankRequest


def ranked(scores: np.ndarray, top_n: int | None = None) -> list[int]:
    """Document indices by score, highest first (ties in input order), the first top_n (None: all)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return [int(i) for i in order[:top_n]]


def tei_rerank_body(scores: np.ndarray, req: RerankRequest) -> bytes:
    """TEI's POST /rerank answer: [{"index", "score", "text" (with return_text)}], highest score first."""
    out = [{"index": i, "score": float(scores[i])} | ({"text": req.documents[i]} if req.return_documents else {})
           for i in ranked(scores)]
    return orjson.dumps(out)


def cohere_rerank_body(scores: np.ndarray, req: RerankRequest, model: str, tokens: int) -> bytes:
    """Cohere's rerank answer (v1 and v2; Jina's has the same results, and its model and usage fields)."""
    results = [{"index": i, "relevance_score": float(scores[i])}
               | ({"document": {"text": req.documents[i]}} if req.return_documents else {})
               for i in ranked(scores, req.top_n)]
    meta = {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}
    return orjson.dumps({"id": str(uuid.uuid4()), "results": results, "meta": meta, "model": model,
                         "usage": {"total_tokens": tokens}})
