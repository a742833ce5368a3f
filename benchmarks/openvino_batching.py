"""python -m benchmarks.openvino_batching: does padding to shape buckets, the token budget or OpenVINO's streams and
threads settings change the OpenVINO backend's throughput?

One process, one export (all-MiniLM-L6-v2, bf16 by default), real texts of mixed length (benchmarks.corpus.mixed_texts).
Each variant is the runtime's own Embedder.encode with one setting changed from the backend's default (LATENCY hint,
1 stream, INFERENCE_NUM_THREADS = --threads, pad_multiple 1, max_batch_tokens 4096):

  pad N        padded lengths rounded up to a multiple of N tokens (the runtime's pad_multiple; fewer distinct shapes)
  budget N     max_batch_tokens N
  threads N    INFERENCE_NUM_THREADS N
  throughput   PERFORMANCE_HINT THROUGHPUT (OpenVINO picks the streams), encode called from one thread
  streams S xC NUM_STREAMS S, the texts split over C threads calling encode at once (how a server with C workers runs)

Variants run round-robin (start rotated every round), --repeats rounds after a warm-up; medians of real tok/s and the
ratio to the default in the same rounds. Prints a table and one JSON line per variant (--json FILE writes them).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Variant:
    name: str
    config: dict = field(default_factory=dict)  # overrides of compile_graph's OpenVINO config
    pad_multiple: int = 1
    max_batch_tokens: int = 4096
    callers: int = 1  # threads calling encode at once


def variants(threads: int) -> list[Variant]:
    out = [Variant("default (latency, 1 stream)")]
    out += [Variant(f"pad {n}", pad_multiple=n) for n in (8, 16, 32)]
    out += [Variant(f"budget {n}", max_batch_tokens=n) for n in (1024, 2048, 8192, 16384)]
    if threads > 1:
        out.append(Variant(f"threads {threads - 1}", config={"INFERENCE_NUM_THREADS": threads - 1}))
    out.append(Variant("throughput hint", config={"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": "AUTO"}))
    if threads > 1:
        out.append(Variant(f"streams {threads} x{threads}", config={"NUM_STREAMS": threads}, callers=threads))
        out.append(Variant(f"streams 1 x{threads}", callers=threads))
    return out


def compile_variant(graph: Path, precision: str, threads: int, overrides: dict):
    """compile_graph's config with overrides (the same call the backend makes otherwise)."""
    import openvino as ov

    from export.ov_session import HINTS

    config = {"INFERENCE_PRECISION_HINT": HINTS[precision], "INFERENCE_NUM_THREADS": int(threads), "NUM_STREAMS": 1,
              "PERFORMANCE_HINT": "LATENCY", **overrides}
    if config.get("NUM_STREAMS") == "AUTO":
        config.pop("NUM_STREAMS")
    compiled = ov.Core().compile_model(str(graph), "CPU", config)
    return compiled


def make_embedder(export: Path, precision: str, threads: int, v: Variant, compiled_cache: dict):
    from engine import Embedder

    emb = Embedder(str(export), backend="openvino", threads=threads, max_batch_tokens=v.max_batch_tokens)
    key = json.dumps(v.config, sort_keys=True)
    if key not in compiled_cache:
        compiled_cache[key] = compile_variant(export / "embed.onnx", precision, threads, v.config)
    # the backend's compiled model swapped for this variant's (benchmarks never import the backend module itself:
    # lint-imports); its per-thread infer requests start afresh
    emb.backend.compiled, emb.backend._local = compiled_cache[key], threading.local()
    if v.pad_multiple != 1:
        emb.__class__ = type("PaddedEmbedder", (type(emb),), {"pad_multiple": v.pad_multiple})
    return emb


def run_once(emb, texts: list[str], callers: int) -> tuple[float, int, int]:
    """(seconds, real tokens, padded tokens) of encoding texts, split over `callers` threads."""
    emb.reset_stats()
    if callers == 1:
        t = time.perf_counter()
        emb.encode(texts)
        seconds = time.perf_counter() - t
    else:
        parts = [texts[i::callers] for i in range(callers)]
        threads = [threading.Thread(target=emb.encode, args=(p,)) for p in parts]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        seconds = time.perf_counter() - t
    s = emb.stats
    return seconds, int(s.real_tokens), int(s.padded_tokens)


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.openvino_batching", description=__doc__.split("\n\n")[0])
    p.add_argument("export", type=Path, nargs="?", default=None,
                   help="export folder (default: the benchmark cache's minilm-<precision>-256, exported if missing)")
    p.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    p.add_argument("--texts", type=int, default=400, help="real mixed texts (default 400)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default=None, help="comma-separated variant names (default: all)")
    p.add_argument("--json", type=Path, default=None, help="also write the per-variant records here (JSON lines)")
    args = p.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

    from . import corpus as C

    export = args.export
    if export is None:
        from .models import default_cache, ensure_export, minilm

        export = ensure_export(minilm(), args.precision, default_cache())
    texts = C.mixed_texts(args.texts)
    vs = variants(args.threads)
    if args.only:
        keep = {s.strip() for s in args.only.split(",")}
        vs = [v for v in vs if v.name in keep or v.name == vs[0].name]
    compiled: dict = {}
    embs = {v.name: make_embedder(export, args.precision, args.threads, v, compiled) for v in vs}
    by_name = {v.name: v for v in vs}
    for name, emb in embs.items():  # warm-up: every shape bucket once
        run_once(emb, texts, by_name[name].callers)
    loads = [load_average()]
    runs: dict = {v.name: [] for v in vs}
    names = list(embs)
    for r in range(args.repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            runs[name].append(run_once(embs[name], texts, by_name[name].callers))
        loads.append(load_average())
    base = statistics.median(real / s for s, real, _ in runs[names[0]])
    records = []
    print(f"{len(texts)} texts, {args.precision}, {args.threads} threads, {args.repeats} rounds; load average {' -> '.join(loads)}")
    print(f"{'variant':<28} {'real tok/s':>11} {'min-max':>17} {'x default':>9} {'pad':>6}")
    for name in names:
        tps = [real / s for s, real, _ in runs[name]]
        real, padded = runs[name][0][1], runs[name][0][2]
        rec = {"variant": name, "precision": args.precision, "threads": args.threads, "texts": len(texts), "real_tokens": real,
               "padded_tokens": padded, "tokens_per_s": {"median": statistics.median(tps), "min": min(tps), "max": max(tps)},
               "ratio_vs_default": statistics.median(tps) / base, "config": by_name[name].config,
               "pad_multiple": by_name[name].pad_multiple, "max_batch_tokens": by_name[name].max_batch_tokens,
               "callers": by_name[name].callers, "load_average": loads}
        records.append(rec)
        print(f"{name:<28} {statistics.median(tps):11,.0f} {min(tps):8,.0f}-{max(tps):<8,.0f} {rec['ratio_vs_default']:9.2f} "
              f"{1 - real / max(padded, 1):6.1%}")
    if args.json:
        args.json.write_text("".join(json.dumps(r) + "\n" for r in records))
    for r in records:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
