"""`engine bench ARGS...`: an alias of `python -m benchmarks ARGS...` (the benchmark suite's only CLI)."""
from __future__ import annotations

import subprocess
import sys

import click


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True}, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def bench(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Benchmark speed and parity (same options as `python -m benchmarks`; see `engine bench --help`)."""
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    for line in proc.stdout:
        click.echo(line, nl=False)
    ctx.exit(proc.wait())
