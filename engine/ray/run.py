"""run_ray_job: `engine embed --ray`, the local job's promises kept on a Ray Data cluster.

The units are the local job's parts (input rows [k * rows_per_part, (k + 1) * rows_per_part)), so a local run and a
Ray run of one job share a fingerprint and either resumes the other. Each unit carries a content key (the sha256 of
its files' content digests and row ranges), recorded in the ledger. The driver scans the input once (row counts, the
bad-row policy, duplicate ids across the whole input), then Ray Data sends one unit per block to an actor pool: each
actor reads its unit's rows itself (parquet row groups before it are skipped unread), embeds them and writes a temp
file named for that attempt. Only the driver commits: it renames the temp file to the part, fsyncs, and appends one
ledger record per unit; a unit already committed is never committed twice. Units finish in any order. Temp files of
dead actors are removed before _SUCCESS, which is written last. The output folder must be one that every node and the
driver see (a shared filesystem), as must the input and the model's export folder.
"""
from __future__ import annotations

import hashlib
import json
import time
import warnings

from ..bulk.embedding import first_texts
from ..bulk.job import EmbedJob
from ..bulk.jobrun import JobRun
from ..bulk.output.parts import publish_part
from ..bulk.partstats import PartStats
from ..bulk.progress import Progress, Summary
from ..errors import ClusterError, EngineError
from ..runtime import Embedder
from .actor import EmbedUnits
from .cluster import MAX_UNIT_RETRIES, check_actors_fit, configure_data, connect, import_ray


def run_ray_job(job: EmbedJob, progress: Progress | None = None) -> Summary:
    """Embed job.input into job.output on Ray (job.ray: 'local' or an address); resumes like run_embed_job."""
    started = time.perf_counter()
    ray = import_ray("engine embed --ray")
    started_ray = connect(job.ray, job.quiet)  # first: a wrong address fails before the scan
    try:
        cpus, gpus = job.cpus_per_actor or 1.0, _gpus(job)
        check_actors_fit(ray, cpus, gpus, gpus_by_default=job.gpus_per_actor is None and gpus > 0)
        with JobRun(job, progress, started=started) as run:
            run.timings["ray_start"] = time.perf_counter() - started
            if run.complete is not None:
                return run.complete
            run.scan("cuda" if gpus else "cpu")
            counts = run.file_rows
            run.plan = run.plan.absolute()  # workers do not share the driver's working directory
            parts = run.parts()
            run.done = {k for k in run.done if parts[k].get("unit", unit_key(run.plan, counts, k)) == unit_key(run.plan, counts, k)}
            ranges = _int8_ranges(run)
            t = time.perf_counter()
            summary = _embed(ray, run, counts, ranges, cpus, gpus)
            run.timings["embed"] = time.perf_counter() - t
            run.clean_stale()  # temp files of attempts whose actor died
            return run.finish(summary)
    finally:
        if started_ray:
            ray.shutdown()


def _gpus(job: EmbedJob) -> float:
    if job.gpus_per_actor is not None:
        return job.gpus_per_actor
    return 1.0 if job.embedder.device == "cuda" else 0.0


def unit_key(plan, counts: list[int], part: int) -> str:
    """A unit's content key: the content digests of the files its rows come from and its row range in each."""
    R = plan.job.rows_per_part
    start, stop = part * R, min((part + 1) * R, plan.total_rows)
    pieces, base = [], 0
    for entry, n in zip(plan.identity["input"], counts):
        if base < stop and base + n > start:
            pieces.append([entry, max(start, base) - base, min(stop, base + n) - base])
        base += n
    rule = {k: plan.identity[k] for k in ("model_manifest_hash", "text_column", "id_column", "keep_columns", "dtype",
                                          "on_bad_row", "max_length", "long_text", "chunk_stride")}
    return hashlib.sha256(json.dumps([pieces, rule], sort_keys=True).encode()).hexdigest()[:24]


def _int8_ranges(run: JobRun):
    """int8: the ledger's ranges, else calibrate on the driver on the first window left to embed, as the local job
    does (every actor must quantize with the same ranges)."""
    if run.job.dtype != "int8" or run.ranges is not None:
        return run.ranges
    texts = first_texts(run.plan, run.done)
    return None if texts is None else run.calibrate(Embedder.from_config(run.job.embedder).encode(texts))


def _pool(ray, units: int, cpus: float, gpus: float, actors: tuple[int, int] | None):
    """An actor pool of (min, max) actors; by default 1 up to as many as the cluster's CPUs (or GPUs) fit."""
    if actors is None:
        res = ray.cluster_resources()
        fit = res.get("GPU", 0.0) // gpus if gpus else res.get("CPU", 1.0) // cpus
        actors = (1, max(1, int(fit)))
    hi = max(1, min(actors[1], units))
    lo = min(actors[0], hi)
    # One unit in flight per actor: a free actor takes the next unit (no queue behind a busy one), and a dead
    # actor loses one unit only.
    return ray.data.ActorPoolStrategy(min_size=lo, max_size=hi, max_tasks_in_flight_per_actor=1)


def _embed(ray, run: JobRun, counts: list[int], ranges, cpus: float, gpus: float) -> Summary:
    """Run the unfinished units on the actor pool; commit each finished unit once, in the order they finish."""
    plan, done = run.plan, run.done
    configure_data(ray, run.job.quiet)
    n_parts = -(-plan.total_rows // run.job.rows_per_part)
    units = [k for k in range(n_parts) if k not in done]
    summary = run.summary()
    if not units:
        return summary
    ds = ray.data.from_items([{"part": k} for k in units], override_num_blocks=len(units))  # one unit per block
    with warnings.catch_warnings():  # max_task_retries has no named parameter yet (Ray 2.60): bounded, not the default -1
        warnings.simplefilter("ignore", DeprecationWarning)
        ds = ds.map_batches(EmbedUnits, batch_size=1, batch_format="pyarrow",
                            compute=_pool(ray, len(units), cpus, gpus, run.job.actors), num_cpus=cpus,
                            num_gpus=gpus or None, max_task_retries=MAX_UNIT_RETRIES,
                            fn_constructor_kwargs={"plan": plan, "rows_per_file": counts, "ranges": ranges, "cpus": cpus})
    committed = set(done)
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            for rec in batch.to_pylist():
                if rec["kind"] == "window":
                    run.progress.advance(rec["input_rows"], rec["real_tokens"])
                elif rec["part"] in committed:  # a second result for one unit (never expected): keep the first
                    if rec["tmp"]:
                        (plan.out / rec["tmp"]).unlink(missing_ok=True)
                else:
                    _commit(run, counts, rec, summary)
                    committed.add(rec["part"])
    except Exception as err:  # the committed units stay in the ledger: a rerun resumes after them
        cause = _engine_error(err)
        if cause is not None:
            raise cause from None
        last = str(err).strip().splitlines()[-1] if str(err).strip() else ""
        raise ClusterError(f"the Ray job failed ({type(err).__name__}: {last}); {len(committed) - len(done)} unit(s) "
                           "were committed; rerun the same command to resume") from err
    return summary


def _commit(run: JobRun, counts: list[int], rec: dict, summary: Summary) -> None:
    """Rename the unit's temp file into place (fsynced), then append its one ledger record."""
    k = rec["part"]
    name, size = publish_part(run.plan.out, rec["tmp"], k) if rec["tmp"] else (None, 0)
    stats = PartStats.of(rec)
    run.record_part(k, stats, rec["seconds"], name, size, unit=unit_key(run.plan, counts, k), worker=rec["worker"])
    summary.count(stats)


def _engine_error(err: BaseException) -> EngineError | None:
    """The engine error (bad input, say) that an actor raised, found through Ray's wrappers."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, EngineError):
            return err
        err = getattr(err, "cause", None) or err.__cause__
    return None
