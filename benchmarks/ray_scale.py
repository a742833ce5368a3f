"""engine embed: the local runner against --ray with 1 and 2 actors (one CPU each) on one machine.

    python -m benchmarks.ray_scale                  # 20,000 real texts, 2 rounds; writes benchmarks/results/<machine>/ray.md
    python -m benchmarks.ray_scale --rows 2000 --rounds 1

Model: a TINY RANDOM BERT (1 layer, hidden 32, max_length 32, the MiniLM tokenizer; benchmarks.embed_rss) so that the
numbers show what Ray costs around the model, not the model: all-MiniLM-L6-v2 would spend minutes per run in the
same onnxruntime calls either way. Texts: real pydoc paragraphs, cycled and tagged with the row number. Each run is a
fresh `python -m engine embed` process (with --ray alone it starts its own local Ray instance, as a user's would);
runs are interleaved (local, ray-1, ray-2) per round, medians reported. Start-up: the same command on 200 rows.
Memory: peak of the summed PSS of the command's process tree (driver, Ray's daemons, actors), sampled every 0.5 s.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.embed_rss import tiny_bert_export, write_corpus
from benchmarks.machine import cpu_model, machine_slug

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"local": [], "ray, 1 actor": ["--ray", "--actors", "1"], "ray, 2 actors": ["--ray", "--actors", "2"]}


def cpu_flags() -> list[str]:
    wanted = ("avx", "avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "fma", "neon")
    try:
        line = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("flags"))
    except (OSError, StopIteration):
        return []
    have = set(line.split(":", 1)[1].split())
    return [f for f in wanted if f in have]


def _tree_pss(pid: int) -> int:
    import psutil

    total = 0
    try:
        root = psutil.Process(pid)
        procs = [root] + root.children(recursive=True)
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_full_info().pss
        except psutil.Error:
            continue
    return total


def run_once(corpus: Path, model: Path, out: Path, extra: list[str]) -> dict:
    """One `engine embed` process: wall seconds, peak PSS of its tree, and its _SUCCESS record."""
    shutil.rmtree(out, ignore_errors=True)
    env = os.environ | {"PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    args = [sys.executable, "-m", "engine", "embed", str(corpus), str(out), "--model", str(model), "--quiet",
            "--rows-per-part", "2000", *extra]
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_pss(proc.pid))
            time.sleep(0.5)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - started
    t.join()
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{err[-3000:]}")
    success = json.loads((out / "_SUCCESS").read_text())
    return {"wall": wall, "pss": peak[0], "rows": success["rows"]["written"], "tokens": success["real_tokens"],
            "timings": success["last_run"]["timings"]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=None, help="Markdown file (default: benchmarks/results/<machine>/ray.md)")
    opts = ap.parse_args(argv)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="ray-scale-") as tmp:
        work = Path(tmp)
        model = tiny_bert_export(work)
        corpus = write_corpus(work / "corpus.parquet", opts.rows)
        small = write_corpus(work / "small.parquet", 200)
        startup = {name: run_once(small, model, work / "o", extra)["wall"] for name, extra in CONFIGS.items()}
        runs: dict[str, list[dict]] = {name: [] for name in CONFIGS}
        for _ in range(opts.rounds):
            for name, extra in CONFIGS.items():
                runs[name].append(run_once(corpus, model, work / "o", extra))
    load_end = os.getloadavg()
    lines = [f"# engine embed: local runner vs Ray Data ({opts.rows:,} real texts, tiny random BERT)", "",
             f"`python -m benchmarks.ray_scale --rows {opts.rows} --rounds {opts.rounds}`; {cpu_model()}, "
             f"{os.cpu_count()} cores, flags {' '.join(cpu_flags())}; Ray 2.60, one CPU per actor.",
             f"Measured UNDER LOAD: the machine was shared with other jobs (load average {load[0]:.1f} at the start, "
             f"{load_end[0]:.1f} at the end, on {os.cpu_count()} cores); read ratios, not absolute speed.", "",
             "| runner | rows/s (end to end) | real tokens/s | wall s | fixed start-up s (200 rows) | peak PSS MiB |",
             "|---|---|---|---|---|---|"]
    for name, rs in runs.items():
        wall = statistics.median(r["wall"] for r in rs)
        rows, tokens = rs[0]["rows"], rs[0]["tokens"]
        pss = max(r["pss"] for r in rs) / 2**20
        lines.append(f"| {name} | {rows / wall:,.0f} | {tokens / wall:,.0f} | {wall:.1f} | {startup[name]:.1f} | {pss:,.0f} |")
    lines += ["", f"Medians of {opts.rounds} interleaved rounds; rows {rs[0]['rows']:,}, real tokens {rs[0]['tokens']:,} "
              "(max length 32). Start-up: wall time of the same command on 200 rows (import, Ray start, actors, scan).", ""]
    text = "\n".join(lines)
    out = Path(opts.out) if opts.out else ROOT / "benchmarks" / "results" / machine_slug("cpu") / "ray.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(json.dumps({n: [r["timings"] for r in rs] for n, rs in runs.items()}))


if __name__ == "__main__":
    main()
