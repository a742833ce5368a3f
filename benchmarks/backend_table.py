"""python -m benchmarks.backend_table: issue 24's table, measured side by side on this CPU.

sentence-transformers (torch fp32, and its openvino / onnx backends where optimum is installed), the engine's fp32,
int8, int8-fast exports on onnxruntime, the fp32 export on OpenVINO (f32), the bf16 export (OpenVINO bf16, on CPUs with
bf16 units) and the default Embedder() on the model folder (backend auto), all-MiniLM-L6-v2, max_length 256, on real
mixed texts (benchmarks.corpus.mixed_texts). One worker process per system (benchmarks.worker), round-robin rounds
(start rotated), medians; quality (mean / min cosine, top-10 neighbour overlap) of each system's vectors of the same
texts against sentence-transformers' torch fp32. The exports come from the benchmark cache (made if missing).

Writes results.jsonl (the suite's record types: run, speed, parity, retrieval, skipped) and table.md to --out.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

ORDER = ("sentence-transformers", "sentence-transformers openvino", "sentence-transformers onnx", "engine fp32",
         "engine int8", "engine int8-fast", "engine openvino f32", "engine bf16", "engine auto")


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.backend_table", description=__doc__.split("\n\n")[0])
    p.add_argument("--texts", type=int, default=1000, help="real mixed texts (default 1000)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default=None, help="comma-separated systems (default: all of them)")
    p.add_argument("--out", type=Path, default=Path("build/backend-table"))
    args = p.parse_args(argv)

    from . import corpus as C
    from .interleave import interleave, real_lengths, summarize
    from .lineup import system_configs
    from .models import default_cache, ensure_export, minilm
    from .parity import pooled_parity, retrieval_overlap
    from .records import Recorder
    from .sections import _bf16_here
    from .systems import available
    from .worker import Pool, WorkerError

    names = tuple(s.strip() for s in args.only.split(",")) if args.only else ORDER
    if "sentence-transformers" not in names:
        names = ("sentence-transformers",) + names  # the baseline and the quality reference
    rec = Recorder(args.out / "results.jsonl", print)
    spec = minilm()
    precisions = ["fp32", "int8", "int8-fast"] + (["bf16"] if _bf16_here() else [])
    exports = {}
    for prec in precisions:
        if f"engine {prec}" in names or (prec == "fp32" and "engine openvino f32" in names):
            try:
                exports[prec] = ensure_export(spec, prec, default_cache())
            except Exception as err:  # noqa: BLE001 - a failed export skips that system
                rec.skip(f"engine {prec}", f"export failed: {type(err).__name__}: {str(err).splitlines()[0]}")
    if "engine bf16" in names and "bf16" not in precisions:
        rec.skip("engine bf16", "this CPU has no bf16 units (amx_bf16 / avx512_bf16) or openvino is not installed")
    cfgs = [c for c in system_configs("cpu", spec, exports, args.threads, names)]
    cfgs.sort(key=lambda c: ORDER.index(c.name) if c.name in ORDER else len(ORDER))
    usable = []
    for c in cfgs:
        why = available(c.kind, c.st_backend, c.backend)
        if why:
            rec.skip(c.name, why)
        else:
            usable.append(c)
    texts = C.mixed_texts(args.texts)
    rec.add({"type": "corpus", "name": "mixed", **C.corpus_stats(texts)})
    pool = Pool(print)
    workers, errors = pool.get(usable)
    for name, err in errors.items():
        rec.skip(name, f"could not start: {(err or 'unknown').strip().splitlines()[-1]}")
    for name, w in workers.items():
        if w.info and w.info.get("providers"):
            rec.add({"type": "provider", "system": name, "providers": w.info["providers"]})
    loads = [load_average()]
    started = time.time()
    meta = {"section": "speed", "model": spec.key, "corpus": "mixed"}
    runs = interleave(rec, workers, {n: texts for n in workers}, args.repeats, meta, print)
    loads.append(load_average())
    by_name = {c.name: c for c in cfgs}
    speed = summarize(rec, runs, meta, by_name, {n: real_lengths(texts, spec.max_length) for n in workers}, spec.config(),
                      "sentence-transformers" if "sentence-transformers" in workers else None)
    embs = {}
    for name, w in workers.items():  # the vectors, untimed, for the quality columns
        try:
            _, embs[name] = w.run(texts, embeddings=True)
        except WorkerError as err:
            rec.skip(f"vectors of {name}", str(err).strip().splitlines()[-1])
    loads.append(load_average())
    pool.close()
    ref = embs.get("sentence-transformers")
    quality = {}
    for name, e in embs.items():
        if ref is None or e is None:
            continue
        quality[name] = {**pooled_parity(e, ref), **retrieval_overlap(e, ref, k=10)}
        rec.add({"type": "parity", "model": spec.key, "output": "sentence_embedding", "layer": None, "system": name,
                 "precision": by_name[name].precision, "against": "sentence-transformers torch fp32", **pooled_parity(e, ref)})
        rec.add({"type": "retrieval", "model": spec.key, "system": name, "precision": by_name[name].precision,
                 "against": "sentence-transformers torch fp32", **retrieval_overlap(e, ref, k=10)})
    rec.add({"type": "meta_loads", "load_average": loads, "seconds": round(time.time() - started, 1)})
    skipped = {r["what"]: r["why"] for r in rec.records if r["type"] == "skipped"}
    rec.close()

    tokens = sum(real_lengths(texts, spec.max_length))
    lines = [f"all-MiniLM-L6-v2, {len(texts):,} mixed texts ({tokens:,} real tokens), max_length {spec.max_length}, "
             f"{args.threads} threads, {args.repeats} interleaved rounds, medians; load average {' -> '.join(loads)}.", "",
             "| system | real tok/s (min-max) | x sentence-transformers fp32 | mean cos | min cos | top-10 overlap vs fp32 |",
             "|---|---|---|---|---|---|"]
    by_speed = {r["system"]: r for r in speed}
    for name in [c.name for c in cfgs]:
        if name not in by_speed:
            lines.append(f"| {name} | {skipped.get(name, 'did not run')} | | | | |")
            continue
        r, q = by_speed[name], quality.get(name, {})
        t = r["tokens_per_s"]
        ratio = f"{r['ratio_vs_baseline']:.2f}" if r.get("ratio_vs_baseline") else "–"
        cell = (lambda k, f: format(q[k], f) if k in q else "–")
        lines.append(f"| {name} | {t['median']:,.0f} ({t['min']:,.0f}-{t['max']:,.0f}) | {ratio} | {cell('cos_mean', '.6f')} | "
                     f"{cell('cos_min', '.5f')} | {cell('overlap_mean', '.3f')} |")
    for name, w in sorted(skipped.items()):
        if name not in by_name:
            lines.append(f"\nskipped {name}: {w}")
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(json.dumps({"out": str(args.out), "providers": {n: (w.info or {}).get("providers") for n, w in workers.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
