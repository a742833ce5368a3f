"""The gate lossy precisions pass on real text: the embedding's cosines and top-10 neighbour overlap against PyTorch
fp32 on the 336 shipped parity texts (export/parity_texts.py), where validate_graph's 23 texts are too few to tell
what a quantization does to retrieval (issue 24: int8 kept 0.970 of the neighbours there, 0.920 on 3,000 texts).

validate_graph still checks every precision on its 23 texts (padding, 1 token to max_length, batch invariance); this
gate adds the corpus-level numbers for TEXT_GATED precisions: mean and min cosine, and the overlap threshold, which
moves here from the 23 texts (k = 10 of 23 texts measured mostly noise).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .parity_texts import PARITY_TEXTS_FILE, parity_texts
from .validate import NEIGHBOURS, _failures, _session, cosines, neighbour_overlap, pad_items, tokenize_validation

TEXT_GATED = ("int8", "int8-fast")  # precisions whose overlap (and cosines) are gated on the parity texts
BATCH = 16  # texts per batch, length-sorted (little padding: validate_graph checks padding on its own texts)
OUTPUT = "sentence_embedding"


def validate_texts(head: nn.Module, graph: Path, tokenizer, input_names: list[str], output_names: list[str],
                   max_length: int, thresholds: dict, openvino: str | None = None, texts=None) -> dict:
    """A parity report (validate_graph's shape, one output) of graph's sentence embedding on the parity texts.

    The reference is the PyTorch head in fp32 on the same length-sorted batches; graph runs single-threaded on
    onnxruntime's CPU provider, or on OpenVINO at the precision openvino names (as validate_graph does).
    """
    texts = list(texts if texts is not None else parity_texts())
    items = tokenize_validation(tokenizer, max_length, texts)[1:]  # without validate_graph's extra 1-token item
    order = sorted(range(len(items)), key=lambda i: len(items[i]["input_ids"]))
    sess = _session(graph, False, openvino)
    k = output_names.index(OUTPUT)
    got, want = [None] * len(items), [None] * len(items)
    finite = True
    pad_id = tokenizer.pad_token_id or 0
    with torch.no_grad():
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            feed = pad_items([items[i] for i in idx], input_names, pad_id)
            ref = head(*(torch.from_numpy(feed[n]) for n in input_names))
            ref = (ref if isinstance(ref, tuple) else (ref,))[k].float().numpy()
            out = sess.run([OUTPUT], feed)[0]
            finite &= bool(np.isfinite(out).all())
            for row, i in enumerate(idx):
                got[i], want[i] = out[row], ref[row]
    got, want = np.stack(got), np.stack(want)
    c = cosines(got, want)
    lengths = [len(it["input_ids"]) for it in items]
    entry = {"max_abs": float(np.abs(got.astype(np.float64) - want).max()), "min_cos": float(c.min()),
             "mean_cos": float(c.mean()), "finite": finite, "neighbour_overlap": neighbour_overlap(got, want),
             "neighbours_k": min(NEIGHBOURS, len(items) - 1)}
    th = dict(thresholds, atol=None)  # a quantized graph has no max-abs bar; cosines and overlap decide
    entry["failures"] = [f.replace(OUTPUT, f"{OUTPUT} on {len(items)} parity texts", 1) for f in _failures(OUTPUT, entry, th)]
    return {"graph": graph.name, "provider": sess.get_providers()[0], "texts": len(items),
            "source": f"export/data/{PARITY_TEXTS_FILE.name}", "batch_size": BATCH,
            "token_lengths": [min(lengths), max(lengths)], "tokens": int(sum(lengths)),
            "outputs": {OUTPUT: entry}, "pass": not entry["failures"], "thresholds": th}


def split_thresholds(thresholds: dict) -> tuple[dict, dict | None]:
    """(validate_graph's thresholds, validate_texts' or None): a TEXT_GATED precision's overlap bar moves to the
    parity texts (its cosine bars apply to both); other precisions keep everything on validate_graph's texts."""
    if thresholds["precision"] not in TEXT_GATED:
        return thresholds, None
    return dict(thresholds, min_overlap=None), thresholds
