"""The benchmark suite: speed (interleaved, repeated), parity, retrieval and scaling; writes results.jsonl + report.md.

Entry points: `python -m benchmarks` and `engine bench` both parse options into Options and call run(Options).
Every measurement is one JSON record; the report is built from the records alone (`--report-only` rebuilds it).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from .machine import machine_record, machine_slug
from .options import SECTIONS, Options
from .plan import make_plan
from .records import Recorder
from .sections import Sections

REPO = Path(__file__).resolve().parent.parent


def default_out(device: str, quick: bool) -> Path:
    """benchmarks/results/<machine> for a full run, build/bench-quick/<machine> for --quick."""
    slug = machine_slug(device)
    return REPO / "build" / "bench-quick" / slug if quick else REPO / "benchmarks" / "results" / slug


def run(opts: Options) -> Path:
    """Run the suite; returns the output folder holding results.jsonl, report.md and the plots."""
    from .report import write_report

    t0 = time.perf_counter()
    log = opts.log or (lambda m: print(f"[{time.perf_counter() - t0:6.0f}s] {m}", file=sys.stderr, flush=True))
    out = Path(opts.out) if opts.out else default_out(opts.device, opts.quick)
    if opts.report_only:
        records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
        write_report(records, out)
        return out
    if opts.device == "cuda":
        import glob

        if not glob.glob("/dev/nvidia[0-9]*"):
            raise SystemExit("--device cuda: no NVIDIA GPU is visible on this machine (/dev/nvidia*); run the CPU suite instead")
    plan = make_plan(opts.device, opts.quick, opts.repeats, opts.scaling_100k)
    rec = Recorder(out / "results.jsonl", log)
    started = time.perf_counter()
    try:
        rec.add(machine_record(opts, plan))
        sections = Sections(opts, plan, rec, log)
        sections.run_gemm("start")
        todo = [s for s in SECTIONS if s in opts.only]
        try:
            for i, section in enumerate(todo):
                t = time.perf_counter()
                getattr(sections, f"run_{section}")()
                rec.add({"type": "section", "section": section, "seconds": round(time.perf_counter() - t, 1)})
                if not opts.quick:
                    sections.run_gemm(f"after {section}")
                # stop the processes no later section uses (frees memory before BERT-base and scaling)
                sections.pool.release([c for later in todo[i + 1:] for c in sections.needs(later)])
        finally:
            sections.pool.close()
        sections.run_gemm("end")
        # the report computes utilization against the best rate seen (start or end)
        rec.add({"type": "gemm", **sections.rates})
        rec.add({"type": "end", "seconds": round(time.perf_counter() - started, 1),
                 "loadavg_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None})
    finally:
        rec.close()
    write_report(rec.records, out)
    log(f"wrote {out / 'report.md'} in {time.perf_counter() - started:.0f}s")
    return out
