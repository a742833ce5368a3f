"""Compare an exported graph with the PyTorch fp32 module on real text in padded batches, on valid positions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .sentences import VALIDATION_TEXTS

BATCH_SIZES = (1, 4, 7)
NEIGHBOURS = 10  # sentence_embedding: top-k nearest-neighbour overlap among the validation texts (k = min(10, n - 1))
_DEFAULTS = {  # precision -> (atol, attention atol, min cosine, mean cosine, top-k neighbour overlap)
    "fp32": (1e-4, 1e-5, 0.99999, None, None),
    "fp16": (None, None, 0.999, None, None),
    "bf16": (None, None, 0.999, 0.9999, 0.99),  # measured with OpenVINO's bf16 hint on the exporting CPU
    # int8 recipes: overlap gated on the 336 parity texts (export/textgate.py). all-MiniLM-L6-v2 there (AMX Xeon):
    # int8 mean 0.9972, min 0.991, top-10 0.941; int8-fast 0.9928, 0.979, 0.900 (issue 24's 0.97 goal is unmet)
    "int8": (None, None, 0.98, 0.995, 0.92),
    "int8-fast": (None, None, 0.95, 0.985, 0.87),
}


def thresholds_for(precision: str, atol: float | None = None, min_cos: float | None = None,
                   min_overlap: float | None = None) -> dict:
    """Parity thresholds for a precision; explicit atol / min_cos override every output's, min_overlap the embedding's."""
    a, a_attn, mc, mean_c, overlap = _DEFAULTS[precision]
    return {
        "precision": precision,
        "atol": atol if atol is not None else a,
        "atol_attentions": atol if atol is not None else a_attn,
        "min_cos": min_cos if min_cos is not None else mc,
        "mean_cos": mean_c,
        "min_overlap": min_overlap if min_overlap is not None else overlap,
    }


def neighbour_overlap(got: np.ndarray, want: np.ndarray, k: int = NEIGHBOURS) -> float:
    """Mean share of each row's k nearest neighbours (cosine, itself excluded) that got and want agree on.

    got, want: (n, D) float; k is capped at n - 1.
    """
    k = min(k, len(got) - 1)
    if k < 1:
        return 1.0

    def top(x):
        x = x.astype(np.float64)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
        sim = x @ x.T
        np.fill_diagonal(sim, -np.inf)
        return np.argsort(-sim, axis=1, kind="stable")[:, :k]

    a, b = top(got), top(want)
    return float(np.mean([len(set(r) & set(q)) / k for r, q in zip(a, b)]))


def tokenize_validation(tokenizer, max_length: int, texts=VALIDATION_TEXTS) -> list[dict[str, np.ndarray]]:
    """Token ids per text, truncated to max_length and not padded, plus a 1-token item (the first text's first token).

    With the texts' own lengths this spans every sequence length class from 1 token to exactly max_length.
    """
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    n = len(texts)
    items = [{k: np.asarray(enc[k][i], dtype=np.int64) for k in enc.keys()} for i in range(n)]
    return [{k: v[:1] for k, v in items[0].items()}] + items


def pad_items(items: list[dict[str, np.ndarray]], input_names: list[str], pad_id: int) -> dict[str, np.ndarray]:
    """Right-pad a batch to its longest item."""
    t = max(len(it["input_ids"]) for it in items)
    out = {}
    for name in input_names:
        fill = pad_id if name == "input_ids" else 0
        arr = np.full((len(items), t), fill, dtype=np.int64)
        for i, it in enumerate(items):
            v = it["attention_mask"] if name == "attention_mask" else it.get(name, np.zeros_like(it["input_ids"]))
            arr[i, : len(v)] = v
        out[name] = arr
    return out


def _reference(head: nn.Module, items, input_names, output_names) -> list[list[np.ndarray]]:
    """PyTorch fp32 outputs for each text alone (no padding at all)."""
    refs = []
    with torch.no_grad():
        for it in items:
            feed = pad_items([it], input_names, 0)
            out = head(*(torch.from_numpy(feed[n]) for n in input_names))
            out = out if isinstance(out, tuple) else (out,)
            refs.append([o.float().numpy() for o in out])
    return refs


def _valid_slice(name: str, array: np.ndarray, row: int, length: int) -> np.ndarray:
    """One text's valid region of an output; the batch axis position differs per output."""
    if name == "sentence_embedding":
        return array[row]  # (D,)
    if name in ("token_embeddings", "last_hidden_state"):
        return array[row, :length]  # (t, H)
    if name == "hidden_states":
        return array[:, row, :length]  # (L+1, t, H)
    return array[:, row, :, :length, :length]  # attentions (L, heads, t, t)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine along the last axis, in float64, flattened; rows that are zero in both count as 1."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    num = (a64 * b64).sum(-1)
    den = np.linalg.norm(a64, axis=-1) * np.linalg.norm(b64, axis=-1)
    return np.where(den > 0, num / np.maximum(den, 1e-300), 1.0).ravel()


def _session(graph: Path, cuda: bool, openvino: str | None = None):
    """A validation session: CUDA when asked and it really loads, else single-threaded CPU; openvino (an export
    precision, 'bf16') runs the graph on OpenVINO with that precision's hint instead, as the openvino backend does."""
    if openvino is not None:
        from .ov_session import OvSession

        return OvSession(graph, openvino, threads=1)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1  # machine-independent numbers; see export_model
    opts.log_severity_level = 3
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
    try:
        return ort.InferenceSession(str(graph), opts, providers=providers)
    except Exception:  # a CUDA provider that fails to load: validate on CPU, the report says which ran
        if not cuda:
            raise
        return ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])


def validate_graph(head: nn.Module, graph: Path, tokenizer, input_names: list[str], output_names: list[str],
                   max_length: int, thresholds: dict, batch_sizes=BATCH_SIZES, cuda: bool = False,
                   openvino: str | None = None) -> dict:
    """Return a parity report; report['pass'] says whether every output met its thresholds.

    cuda runs the graph on the GPU (fp16 graphs are meant for CUDA, where fp16 kernels really compute in fp16);
    report['provider'] names the provider that ran it. openvino: run it on OpenVINO at that precision (bf16).
    """
    items = tokenize_validation(tokenizer, max_length)
    refs = _reference(head, items, input_names, output_names)
    sess = _session(graph, cuda, openvino)
    diffs = {n: [] for n in output_names}
    cos = {n: [] for n in output_names}
    layer_max = {n: None for n in ("hidden_states", "attentions") if n in output_names}
    finite = {n: True for n in output_names}
    pooled = {bs: [None] * len(items) for bs in batch_sizes} if "sentence_embedding" in output_names else {}
    # Interleave long and short texts so every multi-text batch really pads.
    order = sorted(range(len(items)), key=lambda i: len(items[i]["input_ids"]))
    order = [order[j // 2] if j % 2 == 0 else order[-(j // 2) - 1] for j in range(len(order))]
    for bs in batch_sizes:
        for start in range(0, len(order), bs):
            idx = order[start:start + bs]
            feed = pad_items([items[i] for i in idx], input_names, tokenizer.pad_token_id or 0)
            outs = sess.run(output_names, feed)
            for o_i, name in enumerate(output_names):
                finite[name] &= bool(np.isfinite(outs[o_i]).all())
                for row, i in enumerate(idx):
                    length = len(items[i]["input_ids"])
                    got = _valid_slice(name, outs[o_i], row, length)
                    want = _valid_slice(name, refs[i][o_i], 0, length)
                    if name == "sentence_embedding":
                        pooled[bs][i] = got
                    d = np.abs(got.astype(np.float64) - want)
                    diffs[name].append(float(d.max()) if d.size else 0.0)
                    cos[name].append(cosines(got, want))
                    if name in layer_max and d.size:
                        per_layer = d.reshape(d.shape[0], -1).max(1)
                        layer_max[name] = per_layer if layer_max[name] is None else np.maximum(layer_max[name], per_layer)
    lengths = [len(it["input_ids"]) for it in items]
    report = {"graph": graph.name, "provider": sess.get_providers()[0], "texts": len(items), "batch_sizes": list(batch_sizes),
              "token_lengths": [min(lengths), max(lengths)], "outputs": {}, "pass": True}
    for name in output_names:
        c = np.concatenate(cos[name])
        entry = {"max_abs": max(diffs[name]), "min_cos": float(c.min()), "mean_cos": float(c.mean()), "finite": finite[name]}
        if layer_max.get(name) is not None:
            entry["max_abs_per_layer"] = [float(x) for x in layer_max[name]]
        if name == "sentence_embedding":
            k = output_names.index(name)
            want = np.stack([r[k][0] for r in refs])  # (n, D) float32, each text alone in PyTorch
            entry["neighbour_overlap"] = min(neighbour_overlap(np.stack(v), want) for v in pooled.values())
            entry["neighbours_k"] = min(NEIGHBOURS, len(items) - 1)
        entry["failures"] = _failures(name, entry, thresholds)
        report["outputs"][name] = entry
        report["pass"] &= not entry["failures"]
    report["thresholds"] = thresholds
    return report


def _failures(name: str, entry: dict, th: dict) -> list[str]:
    """Human-readable reasons an output failed, empty when it passed."""
    out = []
    if not entry["finite"]:
        out.append(f"{name}: {_non_finite_hint(th.get('precision'))}")
    atol = th["atol_attentions"] if name == "attentions" else th["atol"]
    if atol is not None and entry["max_abs"] > atol:
        out.append(f"{name}: max abs diff {entry['max_abs']:.3g} > {atol:g}")
    if th["min_cos"] is not None and entry["min_cos"] < th["min_cos"]:
        out.append(f"{name}: min cosine {entry['min_cos']:.7f} < {th['min_cos']}")
    if th["mean_cos"] is not None and entry["mean_cos"] < th["mean_cos"]:
        out.append(f"{name}: mean cosine {entry['mean_cos']:.5f} < {th['mean_cos']}")
    overlap = entry.get("neighbour_overlap")
    if th.get("min_overlap") is not None and overlap is not None and overlap < th["min_overlap"]:
        out.append(f"{name}: top-{entry['neighbours_k']} neighbour overlap {overlap:.3f} < {th['min_overlap']} "
                   "(lower it with --min-overlap, or export with a more precise --precision)")
    return out


def _non_finite_hint(precision: str | None) -> str:
    """Why an output held NaN or inf, as far as the precision tells (the weights were checked finite at load)."""
    if precision == "fp16":
        return "non-finite values (fp16 overflow?); export with --precision fp32"
    if precision in ("int8", "int8-fast"):
        return f"non-finite values at {precision}; export with --precision fp32 to see whether the fp32 graph is finite"
    return ("non-finite values in fp32, from finite weights: activations overflow (weights of extreme magnitude?); "
            "the checkpoint cannot be exported as is: restore or re-download it")
