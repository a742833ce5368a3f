"""`engine score INPUT OUTPUT --model CROSS_ENCODER`: options -> EmbedJob(task "rerank") -> run_job. Exit codes: 0 ok,
1 failure, 2 usage."""
from __future__ import annotations

import click

from ..config import EmbedderConfig
from .errors import handle_errors
from .joboptions import job_options
from .options import embedder_options


@click.command()
@click.argument("input", metavar="INPUT")
@click.argument("output", metavar="OUTPUT", type=click.Path(file_okay=False))
@click.option("--query-column", default="query", show_default=True, help="Column (or JSON field) holding the query.")
@click.option("--text-column", default="text", show_default=True,
              help="Column (or JSON field) holding the text scored against the query.")
@job_options("Reranker", "Null, empty, non-string or invalid UTF-8 query or text: stop, drop the row, or score it "
                         "with '' in its place.")
@click.option("--raw-scores", is_flag=True, help="Store the model's logits, not its activation of them (sigmoid for "
                                                 "one label, as CrossEncoder.predict gives them).")
@click.option("--lancedb-table", default=None, metavar="NAME",
              help="Not supported for scoring (refused): engine score writes a parquet dataset.")
@click.option("--ray", "ray", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Not supported for scoring (refused): engine score runs locally.")
@handle_errors
@embedder_options
def score(input, output, embedder: EmbedderConfig, **job_options) -> None:
    """Score each row's (query, text) pair of INPUT (parquet / jsonl[.gz] / csv file, folder or glob) with a
    cross-encoder (--model: its folder or its `engine export` folder) into a parquet dataset OUTPUT: id, the kept
    columns, and score (float32; a list of float32 for a model with more than one label).

    Resumable: rerun the same command after a crash and it continues where it stopped.
    """
    from ..bulk import EmbedJob, Progress, run_job

    job = EmbedJob(input=input, output=output, embedder=embedder, task="rerank", **job_options)
    summary = run_job(job, Progress.for_job(job.quiet))
    if not job.quiet:
        for line in summary.lines():
            click.echo(line)
