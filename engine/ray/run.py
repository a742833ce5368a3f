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

import dataclasses
import hashlib
import json
import time
import warnings
from pathlib import Path

from ..bulk.finish import finish_run
from ..bulk.job import DEFAULT_WINDOW_ROWS, EmbedJob
from ..bulk.ledger import Ledger
from ..bulk.output.folder import clean_stale
from ..bulk.output.parts import calibrate_int8, publish_part
from ..bulk.output.sinks import open_sink
from ..bulk.plan import OutputPlan
from ..bulk.progress import Progress, Summary
from ..bulk.resume import calibration, finished_summary, open_output, rows_per_file, scan_once
from ..bulk.windows import windows
from ..errors import ClusterError, EngineError
from ..runtime import Embedder
from .actor import EmbedUnits
from .cluster import MAX_UNIT_RETRIES, configure_data, connect, import_ray


def run_ray_job(job: EmbedJob, progress: Progress | None = None) -> Summary:
    """Embed job.input into job.output on Ray (job.ray: 'local' or an address); resumes like run_embed_job."""
    started = time.perf_counter()
    progress = progress or Progress.for_job(job.quiet)
    ray = import_ray("engine embed --ray")
    started_ray = connect(job.ray, job.quiet)  # first: a wrong address fails before the scan
    timings = {"ray_start": time.perf_counter() - started}
    try:
        return _run(ray, job, progress, started, timings)
    finally:
        if started_ray:
            ray.shutdown()


def _run(ray, job: EmbedJob, progress: Progress, started: float, timings: dict) -> Summary:
    job, plan, ledger = open_output(job, progress)
    try:
        finished = finished_summary(plan, ledger, progress, started)
        if finished is not None:
            return finished
        cpus, gpus = job.cpus_per_actor or 1.0, _gpus(job)
        if job.window_rows is None:  # not in the fingerprint: batching only
            job = dataclasses.replace(job, window_rows=DEFAULT_WINDOW_ROWS["cuda" if gpus else "cpu"])
            plan = dataclasses.replace(plan, job=job)
        plan, done, timings["scan"] = scan_once(plan, ledger, progress)
        counts = rows_per_file(plan, ledger)
        plan = _absolute(plan)  # workers do not share the driver's working directory
        parts = ledger.parts()
        done = {k for k in done if parts[k].get("unit", unit_key(plan, counts, k)) == unit_key(plan, counts, k)}
        ranges = _int8_ranges(plan, ledger, done)
        t = time.perf_counter()
        summary = _embed(ray, plan, ledger, done, counts, ranges, cpus, gpus, progress)
        timings["embed"] = time.perf_counter() - t
        clean_stale(plan.out, ledger.parts())  # temp files of attempts whose actor died
        return finish_run(plan, ledger, summary, progress, started, timings)
    finally:
        ledger.close()


def _gpus(job: EmbedJob) -> float:
    if job.gpus_per_actor is not None:
        return job.gpus_per_actor
    return 1.0 if job.embedder.device == "cuda" else 0.0


def _absolute(plan: OutputPlan) -> OutputPlan:
    """The plan with absolute input, output and model paths, as every Ray worker must see them."""
    files = [dataclasses.replace(f, path=f.path.resolve()) for f in plan.files]
    cfg = plan.job.embedder
    job = dataclasses.replace(plan.job, output=str(Path(plan.job.output).resolve()),
                              embedder=dataclasses.replace(cfg, model=str(Path(cfg.model).resolve())))
    return dataclasses.replace(plan, job=job, out=plan.out.resolve(), sink=open_sink(job), files=files)


def unit_key(plan: OutputPlan, counts: list[int], part: int) -> str:
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


def _int8_ranges(plan: OutputPlan, ledger: Ledger, done: set[int]):
    """int8: the ledger's ranges, else calibrate on the driver on the first window left to embed, as the local job
    does (every actor must quantize with the same ranges)."""
    if plan.job.dtype != "int8" or calibration(ledger) is not None:
        return calibration(ledger)
    first = next((w for w in windows(plan.job, plan.files, done, plan.keep_schema, plan.id_type) if w.texts), None)
    if first is None:
        return None
    ranges = calibrate_int8(Embedder.from_config(plan.job.embedder).encode(first.texts))
    ledger.append({"kind": "calibration", "ranges": ranges.tolist(), "rows": len(first.texts)})
    return ranges


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


def _embed(ray, plan: OutputPlan, ledger: Ledger, done: set[int], counts: list[int], ranges, cpus: float, gpus: float,
           progress: Progress) -> Summary:
    """Run the unfinished units on the actor pool; commit each finished unit once, in the order they finish."""
    job = plan.job
    configure_data(ray, job.quiet)
    n_parts = -(-plan.total_rows // job.rows_per_part)
    units = [k for k in range(n_parts) if k not in done]
    parts_done = ledger.parts()
    summary = Summary(output=plan.sink.label, total_rows=plan.total_rows, parts_resumed=len(done))
    progress.start(plan.total_rows, sum(parts_done[k]["input_rows"] for k in done))
    if not units:
        return summary
    ds = ray.data.from_items([{"part": k} for k in units], override_num_blocks=len(units))  # one unit per block
    with warnings.catch_warnings():  # max_task_retries has no named parameter yet (Ray 2.60): bounded, not the default -1
        warnings.simplefilter("ignore", DeprecationWarning)
        ds = ds.map_batches(EmbedUnits, batch_size=1, batch_format="pyarrow",
                            compute=_pool(ray, len(units), cpus, gpus, job.actors), num_cpus=cpus, num_gpus=gpus or None,
                            fn_constructor_kwargs={"plan": plan, "rows_per_file": counts, "ranges": ranges, "cpus": cpus},
                            max_task_retries=MAX_UNIT_RETRIES)
    committed = set(done)
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            for rec in batch.to_pylist():
                if rec["kind"] == "window":
                    progress.advance(rec["input_rows"], rec["real_tokens"])
                elif rec["part"] in committed:  # a second result for one unit (never expected): keep the first
                    if rec["tmp"]:
                        (plan.out / rec["tmp"]).unlink(missing_ok=True)
                else:
                    _commit(plan, ledger, counts, rec, summary)
                    committed.add(rec["part"])
    except Exception as err:  # the committed units stay in the ledger: a rerun resumes after them
        cause = _engine_error(err)
        if cause is not None:
            raise cause from None
        raise ClusterError(f"the Ray job failed ({type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}); "
                           f"{len(committed) - len(done)} unit(s) were committed; rerun the same command to resume") from err
    return summary


def _commit(plan: OutputPlan, ledger: Ledger, counts: list[int], rec: dict, summary: Summary) -> None:
    """Rename the unit's temp file into place (fsynced), then append its one ledger record."""
    k = rec["part"]
    name, size = publish_part(plan.out, rec["tmp"], k) if rec["tmp"] else (None, 0)
    stats = {s: rec[s] for s in ("rows", "input_rows", "skipped", "emptied", "real_tokens", "truncated")}
    ledger.append({"kind": "part", "part": k, "first_row": k * plan.job.rows_per_part, "seconds": rec["seconds"],
                   "unit": unit_key(plan, counts, k), "worker": rec["worker"], "file": name, "bytes": size,
                   "committed_at": time.time()} | stats)
    summary.rows += rec["rows"]
    summary.real_tokens += rec["real_tokens"]
    summary.truncated += rec["truncated"]


def _engine_error(err: BaseException) -> EngineError | None:
    """The engine error (bad input, say) that an actor raised, found through Ray's wrappers."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, EngineError):
            return err
        err = getattr(err, "cause", None) or err.__cause__
    return None

