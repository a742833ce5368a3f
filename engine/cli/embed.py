"""`engine embed INPUT OUTPUT`: options -> EmbedJob -> run_embed_job. Exit codes: 0 ok, 1 failure, 2 usage."""
from __future__ import annotations

import click

from ..bulk.job import DTYPES, EmbedJob
from ..config import EmbedderConfig
from .errors import handle_errors
from .joboptions import job_options
from .options import embedder_options


def _actors(_ctx, _param, value: str | None) -> tuple[int, int] | None:
    """N (a fixed pool) or MIN,MAX (an autoscaling pool)."""
    if value is None:
        return None
    try:
        counts = [int(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r}: pass N or MIN,MAX") from None
    if len(counts) not in (1, 2):
        raise click.BadParameter(f"{value!r}: pass N or MIN,MAX")
    return (counts[0], counts[-1])


@click.command()
@click.argument("input", metavar="INPUT")
@click.argument("output", metavar="OUTPUT", type=click.Path(file_okay=False))
@click.option("--text-column", default="text", show_default=True, help="Column (or JSON field) holding the text.")
@job_options("Embedder", "Null, empty, non-string or invalid UTF-8 text: stop, drop the row, or embed ''.")
@click.option("--dtype", type=click.Choice(DTYPES), default="float32", show_default=True,
              help="Stored embedding type (dense models; a sparse model's column is int32 indices + float32 values).")
@click.option("--sparse-model", default=None, metavar="SPLADE",
              help="Also write each row's SPLADE sparse vector (document side) into a `sparse` column next to "
                   "`embedding`: a sparse export folder or SparseEncoder folder. One read of INPUT, both models per "
                   "window (dense + sparse for hybrid search). A SPLADE --model alone writes only `sparse`.")
@click.option("--max-active-dims", type=click.IntRange(min=1), default=None, metavar="K",
              help="Keep the K largest weights of each sparse vector. Default: the sparse model's max_active_dims "
                   "(none: all non-zero).")
@click.option("--lancedb-table", default=None, metavar="NAME",
              help="Write into table NAME of the LanceDB database folder OUTPUT (rows upserted by id), not parquet.")
@click.option("--qdrant-collection", default=None, metavar="NAME",
              help="Write into collection NAME of the Qdrant local-mode folder OUTPUT (points upserted by id; named "
                   "vector 'dense', cosine), not parquet.")
@click.option("--index", is_flag=True,
              help="With --lancedb-table: build an ANN index at the end, its type and size chosen by the row count.")
@click.option("--ray", "ray", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Run on Ray Data: alone, a local Ray instance; or a cluster's address (auto, host:port, ray://host:port). "
                   "Put it after INPUT OUTPUT, or write --ray=ADDRESS.")
@click.option("--actors", callback=_actors, default=None, metavar="N|MIN,MAX",
              help="Ray actors, each with one Embedder. Default: 1 up to as many as the cluster fits.")
@click.option("--cpus-per-actor", type=click.FloatRange(min=0, min_open=True), default=None,
              help="CPUs per Ray actor (its Embedder gets as many threads). Default: 1.")
@click.option("--gpus-per-actor", type=click.FloatRange(min=0), default=None,
              help="GPUs per Ray actor. Default: 1 with --device cuda, else 0.")
@handle_errors
@embedder_options
def embed(input, output, embedder: EmbedderConfig, **job_options) -> None:
    """Embed a corpus INPUT (parquet / jsonl[.gz] / csv / txt file, folder or glob) into a parquet dataset OUTPUT
    (or, with --lancedb-table NAME, into table NAME of the LanceDB database folder OUTPUT; with --qdrant-collection
    NAME, into collection NAME of the Qdrant local-mode folder OUTPUT). A SPLADE --model (or --sparse-model next to a
    dense one) writes a `sparse` column: struct<indices: list<int32>, values: list<float32>>.

    Resumable: rerun the same command after a crash and it continues where it stopped.
    """
    from ..bulk import Progress

    job = EmbedJob(input=input, output=output, embedder=embedder, **job_options)
    if job.ray is None:
        from ..bulk import run_embed_job as run_job
    else:
        from ..ray.run import run_ray_job as run_job  # Ray is imported only here
    summary = run_job(job, Progress.for_job(job.quiet))
    if not job.quiet:
        for line in summary.lines():
            click.echo(line)
