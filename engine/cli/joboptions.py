"""The options `engine embed` and `engine score` share (the bulk job's input, ids, bad rows, output, parts), declared
once; each command adds its own (embed: --dtype, LanceDB, Ray; score: --query-column, --raw-scores)."""
from __future__ import annotations

import click

from ..bulk.job import BAD_ROW_POLICIES, DEFAULT_ROWS_PER_PART


def split_columns(_ctx, _param, value: str | None) -> tuple[str, ...]:
    return tuple(c.strip() for c in value.split(",") if c.strip()) if value else ()


def job_options(model: str, bad_row_help: str):
    """The shared options; model names what runs the windows ("Embedder", "Reranker") in their help."""
    options = [
        click.option("--id-column", default=None,
                     help="Column holding unique ids. Default: the row number across the whole input."),
        click.option("--keep-columns", callback=split_columns, default=None, metavar="A,B",
                     help="Columns copied to the output (others are dropped)."),
        click.option("--on-bad-row", type=click.Choice(BAD_ROW_POLICIES), default="error", show_default=True,
                     help=bad_row_help),
        click.option("--allow-duplicate-ids", is_flag=True, help="Do not refuse repeated ids."),
        click.option("--overwrite", is_flag=True, help="Delete OUTPUT's contents and start over."),
        click.option("--quiet", "-q", is_flag=True, help="Print nothing (errors still go to stderr)."),
        click.option("--rows-per-part", type=click.IntRange(min=1), default=DEFAULT_ROWS_PER_PART, show_default=True,
                     help="Input rows per output part (the unit of resume)."),
        click.option("--window-rows", type=click.IntRange(min=1), default=None,
                     help=f"Rows handed to the {model} at once (length-sorted inside). Default: 1024 on CPU, 8192 on "
                          "CUDA."),
    ]

    def decorate(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn
    return decorate
