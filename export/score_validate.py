"""The cross-encoder's parity gate: score.onnx against the PyTorch fp32 head on real (query, document) pairs from the
parity texts, in padded batches, on the scores (max abs) and on each query's ranking of its documents."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .parity_texts import PARITY_TEXTS_FILE, parity_texts
from .validate import _session, pad_items

QUERIES, DOCUMENTS, TOP_K = 10, 20, 10
BATCH_SIZES = (1, 7, 32)
_DEFAULTS = {  # precision -> (max abs on logits, top-k overlap per query): fp32 must also keep every top-k order
    "fp32": (1e-4, 1.0),
    "fp16": (None, 0.9),
    "bf16": (None, 0.9),
    "int8": (None, 0.8),
    "int8-fast": (None, 0.7),
}


def score_thresholds(precision: str, atol: float | None = None, min_overlap: float | None = None) -> dict:
    a, overlap = _DEFAULTS[precision]
    return {"precision": precision, "atol": atol if atol is not None else a,
            "min_overlap": min_overlap if min_overlap is not None else overlap, "order": precision == "fp32"}


def validation_pairs(texts=None) -> tuple[list[str], list[str]]:
    """QUERIES short texts (3-12 words) and DOCUMENTS texts spread over every length, from the parity texts."""
    texts = list(texts if texts is not None else parity_texts())
    short = [t for t in texts if 3 <= len(t.split()) <= 12]
    queries = short[:: max(1, len(short) // QUERIES)][:QUERIES]
    rest = sorted((t for t in texts if t not in queries), key=len)
    docs = rest[:: max(1, len(rest) // DOCUMENTS)][:DOCUMENTS]
    return queries, docs


def rank_agreement(got: np.ndarray, want: np.ndarray, k: int, tie: float) -> tuple[bool, float]:
    """(order kept, top-k overlap) of one query: got, want (D,) scores. The order is kept when every document of want's
    top k outscores, in got, each document want puts lower by more than tie."""
    top = np.argsort(-want, kind="stable")[:k]
    kept = all(got[a] > got[b] for a in top for b in range(len(want)) if want[a] - want[b] > tie)
    overlap = len(set(top) & set(np.argsort(-got, kind="stable")[:k])) / k
    return kept, overlap


def validate_scores(head: nn.Module, graph: Path, tokenizer, input_names: list[str], max_length: int, thresholds: dict,
                    openvino: str | None = None, pairs=None) -> dict:
    """A parity report for score.onnx: every (query, document) pair alone in PyTorch fp32 (no padding) against the
    graph in batches of BATCH_SIZES that pad (long and short pairs interleaved), label 0's ranking per query."""
    queries, docs = pairs or validation_pairs()
    enc = tokenizer([q for q in queries for _ in docs], [d for _ in queries for d in docs], truncation="longest_first",
                    max_length=max_length)
    items = [{k: np.asarray(enc[k][i], dtype=np.int64) for k in enc.keys()} for i in range(len(enc["input_ids"]))]
    with torch.no_grad():
        want = np.stack([head(*(torch.from_numpy(pad_items([it], input_names, 0)[n]) for n in input_names)).numpy()[0]
                         for it in items])  # (Q*D, L) float32
    sess = _session(graph, False, openvino)
    order = sorted(range(len(items)), key=lambda i: len(items[i]["input_ids"]))
    order = [order[j // 2] if j % 2 == 0 else order[-(j // 2) - 1] for j in range(len(order))]
    max_abs, finite, kept, overlaps = 0.0, True, [], []
    for bs in BATCH_SIZES:
        got = np.empty_like(want)
        for start in range(0, len(order), bs):
            idx = order[start:start + bs]
            got[idx] = sess.run(["scores"], pad_items([items[i] for i in idx], input_names, tokenizer.pad_token_id or 0))[0]
        finite &= bool(np.isfinite(got).all())
        max_abs = max(max_abs, float(np.abs(got.astype(np.float64) - want).max()))
        tie = thresholds["atol"] or 0.0
        for q in range(len(queries)):
            rows = slice(q * len(docs), (q + 1) * len(docs))
            ok, ov = rank_agreement(got[rows, 0], want[rows, 0], min(TOP_K, len(docs)), tie)
            kept.append(ok)
            overlaps.append(ov)
    lengths = [len(it["input_ids"]) for it in items]
    entry = {"max_abs": max_abs, "finite": finite, "order_kept": float(np.mean(kept)), "top_k_overlap": float(np.mean(overlaps)),
             "min_top_k_overlap": float(np.min(overlaps)), "k": min(TOP_K, len(docs))}
    entry["failures"] = _failures(entry, thresholds)
    return {"graph": graph.name, "provider": sess.get_providers()[0], "pairs": len(items), "queries": len(queries),
            "documents_per_query": len(docs), "source": f"export/data/{PARITY_TEXTS_FILE.name}",
            "batch_sizes": list(BATCH_SIZES), "token_lengths": [min(lengths), max(lengths)],
            "outputs": {"scores": entry}, "pass": not entry["failures"], "thresholds": thresholds}


def _failures(entry: dict, th: dict) -> list[str]:
    out = []
    if not entry["finite"]:
        out.append(f"scores: non-finite values at {th['precision']}; export with --precision fp32")
    if th["atol"] is not None and entry["max_abs"] > th["atol"]:
        out.append(f"scores: max abs diff {entry['max_abs']:.3g} > {th['atol']:g}")
    if th["order"] and entry["order_kept"] < 1.0:
        out.append(f"scores: the top-{entry['k']} order of {1 - entry['order_kept']:.0%} of the queries differs from PyTorch's")
    if th["min_overlap"] is not None and entry["top_k_overlap"] < th["min_overlap"]:
        out.append(f"scores: top-{entry['k']} overlap per query {entry['top_k_overlap']:.3f} < {th['min_overlap']} (lower it "
                   "with --min-overlap, or export with a more precise --precision)")
    return out
