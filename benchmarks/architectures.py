"""python -m benchmarks.architectures: one row per modern architecture, engine fp32 and int8 against
sentence-transformers (torch) on the same texts, run interleaved in one process.

No hub access here: each model is random, built from a config sized like the real model's first layers (its hidden
size, heads, key/value heads, head size, MLP width, windows; 2 layers) with a small tokenizer trained on the corpus,
and the sentence-transformers layout of the real checkpoint (pooling, Dense modules, Normalize). Speeds are real
(non-pad) tokens per second; ratios are medians of per-round ratios, so load from other processes on a shared machine
hits both sides of a ratio alike.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .corpus import pydoc_paragraphs
from .machine import cpu_model, machine_slug
from .random_models import build_modern_model, write_st_modules

IDENTITY = "torch.nn.modules.linear.Identity"
# arch -> (real model it is sized after, config overrides, sentence-transformers layout)
REAL_FIRST_LAYERS = {
    "qwen3": ("Qwen3-Embedding-0.6B", {"hidden_size": 1024, "num_attention_heads": 16, "num_key_value_heads": 8,
                                       "head_dim": 128, "intermediate_size": 3072}, {"pooling_mode": "lasttoken"}),
    "modernbert": ("ModernBERT-base (gte-modernbert)", {"hidden_size": 768, "num_attention_heads": 12,
                                                        "intermediate_size": 1152, "local_attention": 128},
                   {"pooling_mode": "mean"}),
    "gemma3_text": ("EmbeddingGemma-300m", {"hidden_size": 768, "num_attention_heads": 3, "num_key_value_heads": 1,
                                            "head_dim": 256, "query_pre_attn_scalar": 256, "intermediate_size": 1152,
                                            "sliding_window": 512},
                    {"pooling_mode": "mean", "dense": [(768, 3072, IDENTITY), (3072, 768, IDENTITY)]}),
    "gte": ("gte-multilingual-base", {"hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072},
            {"pooling_mode": "cls"}),
    "nomic_bert": ("nomic-embed-text-v1.5", {"hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072},
                   {"pooling_mode": "mean"}),
}
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile", "avx_vnni")


def cpu_flags() -> list[str]:
    """The SIMD flags of this CPU that matter to onnxruntime's and torch's kernels."""
    try:
        line = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("flags"))
    except (OSError, StopIteration):
        return []
    have = set(line.split(":", 1)[1].split())
    return [f for f in CPU_FLAGS if f in have]


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_arch(arch: str, work: Path, corpus: list[str], texts: list[str], max_length: int, repeats: int, threads: int,
               log) -> dict:
    """Build, export (fp32, int8), then time engine fp32 / int8 and sentence-transformers round-robin."""
    import torch
    from sentence_transformers import SentenceTransformer

    from engine import Embedder
    from export import ExportOptions, ParityError, export_model

    real, overrides, layout = REAL_FIRST_LAYERS[arch]
    folder = build_modern_model(arch, work / "models" / arch, corpus, layers=2, overrides=overrides, vocab_size=4000,
                                max_length=512)
    write_st_modules(folder, layout["pooling_mode"], layout.get("dense", ()), normalize=True, max_seq_length=max_length)
    manifests, failed = {}, {}
    for precision in ("fp32", "int8"):
        started = time.perf_counter()
        try:
            manifests[precision] = export_model(ExportOptions(model=str(folder), out_dir=str(work / "exports" / f"{arch}-{precision}"),
                                                              precision=precision, overwrite=True), log=lambda _m: None)
        except ParityError as err:  # random weights can miss int8's cosine bar; the row says so instead of timing it
            failed[precision] = "; ".join(f for rep in err.report.values() for o in rep["outputs"].values() for f in o["failures"])
            log(f"{arch}: {precision} export failed parity: {failed[precision]}")
            continue
        log(f"{arch}: exported {precision} in {time.perf_counter() - started:.0f}s")
    engines = {p: Embedder(work / "exports" / f"{arch}-{p}", device="cpu", threads=threads) for p in manifests}
    torch.set_num_threads(threads)
    st = SentenceTransformer(str(folder), device="cpu")
    systems = {f"engine-{p}": (lambda e=e: e.encode(texts, batch_size=32)) for p, e in engines.items()}
    systems["sentence-transformers"] = lambda: st.encode(texts, batch_size=32)
    ref = st.encode(texts, batch_size=32)
    fp32 = engines["fp32"].encode(texts)
    int8 = engines["int8"].encode(texts) if "int8" in engines else None
    tokens = sum(len(engines["fp32"].rust_tokenizer.encode(t).ids) for t in texts)
    for fn in systems.values():  # warm-up
        fn()
    seconds: dict = {name: [] for name in systems}
    names = list(systems)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            seconds[name].append(_timed(systems[name]))
    st_s = seconds["sentence-transformers"]
    ratio = {n: statistics.median(s_ / e for s_, e in zip(st_s, seconds[n])) for n in seconds if n.startswith("engine")}
    cos = None if int8 is None else (int8 * ref).sum(1) / (np.linalg.norm(int8, axis=1) * np.linalg.norm(ref, axis=1))
    m = manifests["fp32"]
    row = {"arch": arch, "real": real, "config": overrides, "fused": m["fused_ops"], "attention_fused": m["attention_fused"],
           "tokens": tokens, "texts": len(texts),
           "tps": {n: tokens / statistics.median(s) for n, s in seconds.items()}, "ratio": ratio,
           "fp32_max_abs": float(np.abs(fp32 - ref).max()), "int8_min_cos": None if cos is None else float(cos.min()),
           "failed": failed,
           "export_parity": max(o["max_abs"] for rep in m["parity"].values() for o in rep["outputs"].values())}
    log(f"{arch}: " + ", ".join(f"{n} {v:.0f} tok/s" for n, v in row["tps"].items()) + "; "
        + ", ".join(f"{n}/st {v:.2f}x" for n, v in ratio.items()))
    return row


def report(rows: list[dict], meta: dict) -> str:
    """The markdown page."""
    out = ["# Modern architectures: engine vs sentence-transformers (CPU)", "",
           f"Command: `{meta['command']}`", "",
           f"Machine: {meta['cpu']}, {meta['cores']} cores, flags {' '.join(meta['flags'])}; threads {meta['threads']} "
           f"(engine and torch); load average at start {meta['load']}. {meta['texts']} pydoc paragraphs truncated to "
           f"{meta['max_length']} tokens, batch 32, {meta['repeats']} interleaved rounds after a warm-up; versions {meta['versions']}.",
           "",
           "Random weights, 2 layers sized like the named model's first layers (no hub access here), small tokenizer; "
           "speeds are real tokens/s (median of rounds), ratios the median of per-round ratios to sentence-transformers.",
           "",
           "| architecture | sized after | engine fp32 tok/s | engine int8 tok/s | sentence-transformers tok/s | fp32 / ST | "
           "int8 / ST | fp32 max abs vs ST | int8 min cos vs ST | export parity (fp32, max abs) | fused ops (fp32 graph) |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        fused = ", ".join(f"{k} {v}" for k, v in r["fused"].items()) or "none"
        fused += "" if r["attention_fused"] else "; attention unfused"
        ok = "int8" not in r["failed"]
        int8_tps = f"{r['tps']['engine-int8']:.0f}" if ok else f"export refused ({r['failed']['int8']})"
        int8_ratio = f"{r['ratio']['engine-int8']:.2f}x" if ok else "-"
        int8_cos = f"{r['int8_min_cos']:.4f}" if ok else "-"
        out.append(f"| {r['arch']} | {r['real']} | {r['tps']['engine-fp32']:.0f} | {int8_tps} | "
                   f"{r['tps']['sentence-transformers']:.0f} | {r['ratio']['engine-fp32']:.2f}x | {int8_ratio} | "
                   f"{r['fp32_max_abs']:.1e} | {int8_cos} | {r['export_parity']:.1e} | {fused} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> None:
    import importlib

    p = argparse.ArgumentParser(prog="python -m benchmarks.architectures", description=__doc__.splitlines()[0])
    p.add_argument("--archs", default=",".join(REAL_FIRST_LAYERS), help="comma-separated architectures")
    p.add_argument("--texts", type=int, default=128)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/<machine>/architectures.md")
    a = p.parse_args(argv)
    archs = [x.strip() for x in a.archs.split(",") if x.strip()]
    corpus = pydoc_paragraphs()
    texts = corpus[: a.texts]
    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory(prefix="bench-arch-") as tmp:
        rows = [bench_arch(arch, Path(tmp), corpus[:1000], texts, a.max_length, a.repeats, a.threads, print) for arch in archs]
    versions = ", ".join(f"{name} {importlib.import_module(name).__version__}"
                         for name in ("onnxruntime", "torch", "transformers", "sentence_transformers"))
    meta = {"command": "python -m benchmarks.architectures " + " ".join(argv if argv is not None else sys.argv[1:]),
            "cpu": cpu_model(), "cores": os.cpu_count(), "flags": cpu_flags(), "threads": a.threads, "load": load,
            "texts": len(texts), "max_length": a.max_length, "repeats": a.repeats, "versions": versions}
    out = a.out or Path(__file__).parent / "results" / machine_slug("cpu") / "architectures.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report(rows, meta))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
