"""The sparse encoder's parity gate: sparse.onnx against the PyTorch fp32 SpladeHead on real texts from the parity
texts (every length class, plus a 1-token item), each text alone in PyTorch against the graph in batches that pad.

fp32: the max abs difference over the whole vocabulary vector, and the active pattern: an index may be non-zero in
one and zero in the other only where the non-zero value is at most atol. Lossy precisions: per text, the cosine of the
two vectors and the overlap of their top-k active dimensions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .parity_texts import PARITY_TEXTS_FILE, parity_texts
from .validate import _session, cosines, pad_items

TEXTS, TOP_K = 64, 32
BATCH_SIZES = (1, 7, 32)
_DEFAULTS = {  # precision -> (max abs, min cosine, mean top-k active-dimension overlap); fp32 also keeps the pattern
    "fp32": (1e-4, None, None),
    "fp16": (None, 0.999, 0.9),
    "bf16": (None, 0.995, 0.85),
    "int8": (None, 0.98, 0.8),
    "int8-fast": (None, 0.95, 0.7),
}


def sparse_thresholds(precision: str, atol: float | None = None, min_cos: float | None = None,
                      min_overlap: float | None = None) -> dict:
    a, c, o = _DEFAULTS[precision]
    return {"precision": precision, "atol": atol if atol is not None else a, "min_cos": min_cos if min_cos is not None else c,
            "min_overlap": min_overlap if min_overlap is not None else o, "pattern": precision == "fp32"}


def validation_texts(texts=None) -> list[str]:
    """TEXTS parity texts spread evenly over their lengths (short to longer than any max_length)."""
    texts = sorted(texts if texts is not None else parity_texts(), key=len)
    return texts[:: max(1, len(texts) // TEXTS)][:TEXTS]


def top_k_overlap(got: np.ndarray, want: np.ndarray, k: int = TOP_K) -> float:
    """Share of want's top-k active dimensions (k capped at its active count) that are among got's top k."""
    k = min(k, int((want > 0).sum()))
    if k == 0:
        return 1.0 if not (got > 0).any() else 0.0
    a = set(np.argsort(-want, kind="stable")[:k].tolist())
    return len(a & set(np.argsort(-got, kind="stable")[:k].tolist())) / k


def validate_sparse(head: nn.Module, graph: Path, tokenizer, input_names: list[str], max_length: int, thresholds: dict,
                    openvino: str | None = None, texts=None) -> dict:
    """A parity report for sparse.onnx (see the module doc); report['pass'] says whether it met thresholds."""
    texts = validation_texts(texts)
    enc = tokenizer(texts, truncation=True, max_length=max_length)
    items = [{k: np.asarray(enc[k][i], dtype=np.int64) for k in enc.keys()} for i in range(len(texts))]
    items = [{k: v[:1] for k, v in items[0].items()}] + items  # a 1-token item
    with torch.no_grad():
        want = np.stack([head(*(torch.from_numpy(pad_items([it], input_names, 0)[n]) for n in input_names)).numpy()[0]
                         for it in items])  # (N, V) float32
    sess = _session(graph, False, openvino)
    order = sorted(range(len(items)), key=lambda i: len(items[i]["input_ids"]))
    order = [order[j // 2] if j % 2 == 0 else order[-(j // 2) - 1] for j in range(len(order))]
    atol = thresholds["atol"] if thresholds["atol"] is not None else 0.0
    max_abs, finite, mismatched, cos, overlaps = 0.0, True, 0, [], []
    for bs in BATCH_SIZES:
        got = np.empty_like(want)
        for start in range(0, len(order), bs):
            idx = order[start:start + bs]
            got[idx] = sess.run(["sparse_embedding"], pad_items([items[i] for i in idx], input_names,
                                                                 tokenizer.pad_token_id or 0))[0]
        finite &= bool(np.isfinite(got).all())
        max_abs = max(max_abs, float(np.abs(got.astype(np.float64) - want).max()))
        differ = ((got > 0) != (want > 0)) & (np.maximum(np.abs(got), np.abs(want)) > atol)
        mismatched += int(differ.sum())
        cos.append(cosines(got, want))
        overlaps += [top_k_overlap(g, w) for g, w in zip(got, want)]
    c = np.concatenate(cos)
    active = (want > 0).sum(1)
    lengths = [len(it["input_ids"]) for it in items]
    entry = {"max_abs": max_abs, "finite": finite, "pattern_mismatches": mismatched, "min_cos": float(c.min()),
             "mean_cos": float(c.mean()), "top_k_overlap": float(np.mean(overlaps)), "k": TOP_K,
             "active_dims": [int(active.min()), float(active.mean()), int(active.max())], "vocab_size": int(want.shape[1])}
    entry["failures"] = _failures(entry, thresholds)
    return {"graph": graph.name, "provider": sess.get_providers()[0], "texts": len(items),
            "source": f"export/data/{PARITY_TEXTS_FILE.name}", "batch_sizes": list(BATCH_SIZES),
            "token_lengths": [min(lengths), max(lengths)], "outputs": {"sparse_embedding": entry},
            "pass": not entry["failures"], "thresholds": thresholds}


def _failures(entry: dict, th: dict) -> list[str]:
    out = []
    if not entry["finite"]:
        out.append(f"sparse_embedding: non-finite values at {th['precision']}; export with --precision fp32")
    if th["atol"] is not None and entry["max_abs"] > th["atol"]:
        out.append(f"sparse_embedding: max abs diff {entry['max_abs']:.3g} > {th['atol']:g}")
    if th["pattern"] and entry["pattern_mismatches"]:
        out.append(f"sparse_embedding: {entry['pattern_mismatches']} vocabulary entries are active in one of graph and "
                   f"PyTorch and not in the other (by more than atol {th['atol']:g})")
    if th["min_cos"] is not None and entry["min_cos"] < th["min_cos"]:
        out.append(f"sparse_embedding: min cosine {entry['min_cos']:.6f} < {th['min_cos']} (lower it with --min-cos, or "
                   "export with a more precise --precision)")
    if th["min_overlap"] is not None and entry["top_k_overlap"] < th["min_overlap"]:
        out.append(f"sparse_embedding: top-{entry['k']} active-dimension overlap {entry['top_k_overlap']:.3f} < "
                   f"{th['min_overlap']} (lower it with --min-overlap, or export with a more precise --precision)")
    return out
