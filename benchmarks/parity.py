"""How close the engine's outputs are to PyTorch fp32: per layer, per pooled embedding, and in nearest-neighbour terms."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from export.validate import cosines

REFERENCE = "transformers eager fp32, each text alone (no padding)"


def _pad(ids: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    t = max(len(x) for x in ids)
    input_ids = np.full((len(ids), t), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), t), dtype=np.int64)
    for r, x in enumerate(ids):
        input_ids[r, : len(x)] = x
        mask[r, : len(x)] = 1
    return input_ids, mask


def layer_parity(spec, export: Path, texts: list[str], device: str = "cpu", threads: int = 2, batch: int = 8) -> list[dict]:
    """Every hidden-state layer and every attention layer of the export's inspect.onnx against transformers eager fp32.

    The graph runs padded batches of `batch` texts in input order (so padding is exercised); the reference runs each
    text alone. Compared on valid positions only: hidden states per token vector, attentions per query row.
    """
    import onnxruntime as ort
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(threads)
    export = Path(export)
    manifest = json.loads((export / "manifest.json").read_text())
    tok = AutoTokenizer.from_pretrained(str(spec.source))
    model = AutoModel.from_pretrained(str(spec.source), attn_implementation="eager", dtype=torch.float32).eval()
    ids = tok(list(texts), truncation=True, max_length=spec.max_length)["input_ids"]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
    sess = ort.InferenceSession(str(export / "inspect.onnx"), sess_options=opts, providers=providers)
    provider = sess.get_providers()[0]
    if device == "cuda" and provider != "CUDAExecutionProvider":
        raise RuntimeError(f"inspect.onnx runs on {provider}, not CUDA")
    inputs = manifest["inputs"]
    pad_id = manifest.get("pad_token_id", 0)
    n_layers = manifest["layers"]
    acc = {("hidden_states", i): ([], []) for i in range(n_layers + 1)}
    acc.update({("attentions", i): ([], []) for i in range(n_layers)})
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        input_ids, mask = _pad(chunk, pad_id)
        feed = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in inputs:
            feed["token_type_ids"] = np.zeros_like(input_ids)
        hs, att = sess.run(["hidden_states", "attentions"], feed)  # (L+1, B, T, H), (L, B, heads, T, T)
        for r, x in enumerate(chunk):
            t = len(x)
            with torch.no_grad():
                out = model(input_ids=torch.tensor([x]), attention_mask=torch.ones(1, t, dtype=torch.long),
                            token_type_ids=torch.zeros(1, t, dtype=torch.long), output_hidden_states=True, output_attentions=True)
            for i, ref in enumerate(out.hidden_states):
                got, want = hs[i, r, :t], ref[0].numpy()
                acc[("hidden_states", i)][0].append(float(np.abs(got.astype(np.float64) - want).max()))
                acc[("hidden_states", i)][1].append(cosines(got, want))
            for i, ref in enumerate(out.attentions):
                got, want = att[i, r, :, :t, :t], ref[0].numpy()
                acc[("attentions", i)][0].append(float(np.abs(got.astype(np.float64) - want).max()))
                acc[("attentions", i)][1].append(cosines(got, want))
    lengths = [len(x) for x in ids]
    out = []
    for (name, layer), (diffs, cos) in acc.items():
        c = np.concatenate(cos)
        out.append({"output": name, "layer": layer, "precision": "fp32", "system": f"inspect.onnx ({provider})",
                    "against": REFERENCE, "texts": len(ids), "batch": batch, "token_lengths": [min(lengths), max(lengths)],
                    "max_abs": max(diffs), "cos_mean": float(c.mean()), "cos_min": float(c.min())})
    return out


def pooled_parity(got: np.ndarray, want: np.ndarray) -> dict:
    """Max abs difference and cosine (mean, min) between two (N, D) embedding matrices, row by row."""
    c = cosines(got, want)
    return {"texts": int(len(got)), "max_abs": float(np.abs(got.astype(np.float64) - want).max()),
            "cos_mean": float(c.mean()), "cos_min": float(c.min()), "cos_p01": float(np.percentile(c, 1))}


def _normalized(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def top_k(emb: np.ndarray, k: int) -> np.ndarray:
    """Each row's k nearest other rows by cosine (itself excluded), best first: (N, k) indices."""
    x = _normalized(emb)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    part = np.argpartition(-sims, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
    return np.take_along_axis(part, order, axis=1)


def retrieval_overlap(got: np.ndarray, want: np.ndarray, k: int = 10) -> dict:
    """Top-k nearest-neighbour overlap: every text queries the corpus with both embeddings; |A & B| / k per query."""
    a, b = top_k(got, k), top_k(want, k)
    overlap = np.array([len(set(x) & set(y)) / k for x, y in zip(a, b)])
    return {"n": int(len(got)), "k": k, "overlap_mean": float(overlap.mean()), "overlap_min": float(overlap.min()),
            "full_overlap_share": float((overlap == 1.0).mean()), "top1_agreement": float((a[:, 0] == b[:, 0]).mean())}
