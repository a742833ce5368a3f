"""python -m benchmarks.rerank_table: issue 25's speed and parity table for rerankers, on this CPU.

sentence-transformers' CrossEncoder.predict (torch fp32, batch 32) against the engine's Reranker on the fp32, int8 and
(on CPUs with bf16 units and openvino) bf16 exports of the same cross-encoder: all-MiniLM-L6-v2's trained encoder with
a random one-label head (benchmarks.random_cross_encoders; no cross-encoder weights are reachable here, and a MiniLM
cross-encoder such as ms-marco-MiniLM-L6-v2 has this shape). Queries are short real texts, each paired with documents
of mixed length (benchmarks.corpus), max_length 512. Every system scores the same pairs once per round, systems in
rotated order per round (one process, 2 threads each), medians over rounds; quality per system against
CrossEncoder.predict: max abs of the scores, the share of queries whose top-10 order is kept, mean top-10 overlap.

Writes results.json and table.md to --out.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path


def cpu_flags() -> str:
    from export.cpu import cpu_flags as flags

    keep = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "amx_tile", "avx_vnni")
    return " ".join(f for f in keep if f in flags())


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def pairs_for(queries: int, docs: int) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    from . import corpus as C

    qs = C.short_texts(max(queries, 50))[:queries]
    pool = C.mixed_texts(3000)
    ds = [pool[(i * 7919) % len(pool)] for i in range(queries * docs)]
    return qs, ds, [(q, ds[i * docs + j]) for i, q in enumerate(qs) for j in range(docs)]


def quality(got, want, queries: int, docs: int) -> dict:
    import numpy as np

    from export.score_validate import rank_agreement

    kept, overlap = [], []
    for q in range(queries):
        rows = slice(q * docs, (q + 1) * docs)
        ok, ov = rank_agreement(np.asarray(got[rows]), np.asarray(want[rows]), min(10, docs), 1e-6)
        kept.append(ok)
        overlap.append(ov)
    return {"max_abs": float(np.abs(np.asarray(got, dtype=np.float64) - want).max()),
            "order_kept": float(np.mean(kept)), "top10_overlap": float(np.mean(overlap))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.rerank_table", description=__doc__.split("\n\n")[0])
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--docs", type=int, default=20, help="documents per query")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--out", type=Path, default=Path("build/rerank-table"))
    p.add_argument("--cache", type=Path, default=None, help="where the cross-encoder and its exports are kept")
    args = p.parse_args(argv)

    import numpy as np
    import torch
    from sentence_transformers import CrossEncoder

    from engine import Reranker
    from export import ExportOptions, ParityError, export_model

    from .models import default_cache
    from .random_cross_encoders import minilm_cross_encoder
    from .sections import _bf16_here

    torch.set_num_threads(args.threads)
    cache = args.cache or default_cache() / "rerank"
    folder = cache / "minilm-cross-encoder"
    if not (folder / "config.json").is_file():
        minilm_cross_encoder(folder)
    precisions = ["fp32", "int8"] + (["bf16"] if _bf16_here() else [])
    systems, notes = {}, []
    ce = CrossEncoder(str(folder), device="cpu", max_length=args.max_length)
    systems["CrossEncoder.predict (torch fp32, batch 32)"] = lambda pairs: ce.predict(pairs, batch_size=32)
    for prec in precisions:
        out = cache / f"export-{prec}-{args.max_length}"
        if not (out / "manifest.json").is_file():
            try:
                export_model(ExportOptions(model=str(folder), out_dir=str(out), precision=prec, max_length=args.max_length,
                                           overwrite=True), log=lambda _m: None)
            except ParityError as err:
                notes.append(f"{prec}: export missed its gate ({str(err).splitlines()[1].strip()}); measured anyway")
        rr = Reranker(out, threads=args.threads, device="cpu")
        systems[f"engine {prec} ({rr.backend_choice.name})"] = rr.predict
    auto = Reranker(folder, threads=args.threads, device="cpu", cache_dir=str(cache / "engine-cache"),
                    max_length=args.max_length)
    systems[f"engine default Reranker(folder) ({auto.manifest['precision']}, {auto.backend_choice.name})"] = auto.predict

    queries, docs, pairs = pairs_for(args.queries, args.docs)
    tok = auto.tokenizer
    real_tokens = sum(min(len(e.ids), args.max_length) for e in tok.encode_batch(pairs))
    names = list(systems)
    for name in names:  # warm-up (first-call allocations, OpenVINO compilation)
        systems[name](pairs[:64])
    times = {n: [] for n in names}
    scores = {}
    for r in range(args.repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            t = time.perf_counter()
            scores[name] = np.asarray(systems[name](pairs), dtype=np.float32)
            times[name].append(time.perf_counter() - t)
    base = names[0]
    rows = []
    for name in names:
        med = statistics.median(times[name])
        rows.append({"system": name, "seconds": med, "pairs_per_s": len(pairs) / med, "tokens_per_s": real_tokens / med,
                     "x_cross_encoder": statistics.median(times[base]) / med, "times": times[name]}
                    | quality(scores[name], scores[base], len(queries), args.docs))
    meta = {"cpu": platform.processor() or platform.machine(), "flags": cpu_flags(), "load_average_end": load_average(),
            "pairs": len(pairs), "queries": len(queries), "docs_per_query": args.docs, "real_tokens": real_tokens,
            "max_length": args.max_length, "threads": args.threads, "repeats": args.repeats, "notes": notes,
            "command": "python -m benchmarks.rerank_table " + " ".join(argv if argv is not None else __import__("sys").argv[1:])}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    table = report(rows, meta)
    (args.out / "table.md").write_text(table)
    print(table)
    return 0


def report(rows: list[dict], meta: dict) -> str:
    lines = [f"# Rerankers: {meta['pairs']:,} pairs ({meta['queries']} queries x {meta['docs_per_query']} documents), "
             f"max_length {meta['max_length']}, {meta['threads']} threads, median of {meta['repeats']}",
             "", f"CPU flags: {meta['flags']}; load average at the end: {meta['load_average_end']}; "
             f"real tokens: {meta['real_tokens']:,}", "",
             "| system | pairs/s | real tok/s | x CrossEncoder | max abs | top-10 order kept | top-10 overlap |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['system']} | {r['pairs_per_s']:,.0f} | {r['tokens_per_s']:,.0f} | {r['x_cross_encoder']:.2f} | "
                     f"{r['max_abs']:.2g} | {r['order_kept']:.2f} | {r['top10_overlap']:.3f} |")
    lines += ["", *[f"note: {n}" for n in meta["notes"]], f"command: `{meta['command']}`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
