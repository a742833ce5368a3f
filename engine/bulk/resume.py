"""Opening an embed job's output, shared by every runner (local and Ray): the plan, the fingerprint check, a complete
output left alone, an output that is no longer the job's refused before any write, the scan run once (its result kept
in the ledger), and stale files cleaned up."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from ..errors import OutputError
from ..runtime.checks import check_folder_task, check_task, folder_task
from ..runtime.models import load_export, resolve_export
from .input import list_inputs
from .job import EmbedJob
from .ledger import LEDGER, SUCCESS, Ledger, identity_diff
from .output.folder import clean_stale
from .output.parts import schema_ranges
from .output.sinks import open_sink
from .partstats import total
from .plan import OutputPlan
from .progress import Progress, Summary
from .scan import read_columns_schema, scan_input


def calibration(ledger: Ledger) -> NDArray[np.float32] | None:
    """The int8 ranges recorded in the ledger, or None before the first window was embedded."""
    cal = ledger.calibration
    return np.asarray(cal["ranges"], dtype=np.float32) if cal else None


def open_output(job: EmbedJob, progress: Progress, manifest: dict | None = None,
                sparse_manifest: dict | None = None) -> tuple[EmbedJob, OutputPlan, Ledger]:
    """Claim the output (a parquet folder or a LanceDB table), resolve the model (exported once into the cache;
    job.embedder.model becomes the export folder) unless its manifest is given, plan, and open (lock) the ledger;
    refuse an output of another job, and a model made for another task (before any export or write). engine embed
    of a SPLADE model becomes task "sparse" (its dense-only options refused); --sparse-model is resolved the same way."""
    from .sparse import check_sparse_model, resolve_sparse

    job = _sparse_if(job, folder_task(job.embedder.model, job.embedder.pooling) if manifest is None else manifest.get("task"))
    check_folder_task(job.embedder.model, job.task, job.embedder.pooling)
    if job.sparse_model is not None:
        check_sparse_model(job)
    sink = open_sink(job)
    try:
        return _open_output(job, sink, progress, manifest, sparse_manifest)
    except BaseException:
        sink.close()  # a refusal releases what the sink holds (a Qdrant folder's lock)
        raise


def _open_output(job: EmbedJob, sink, progress: Progress, manifest: dict | None,
                 sparse_manifest: dict | None) -> tuple[EmbedJob, OutputPlan, Ledger]:
    from .sparse import resolve_sparse

    files = sink.claim(job.input, list_inputs(job.input), job.overwrite)
    if manifest is None:
        folder = resolve_export(job.embedder, log=progress.message)  # exported once, into the cache; say so
        job = dataclasses.replace(job, embedder=dataclasses.replace(job.embedder, model=str(folder)))
        manifest = load_export(folder)
        job = _sparse_if(job, manifest.get("task"))
        check_task(manifest, folder, job.task)
    job.check_model_task()
    if job.sparse_model is not None and sparse_manifest is None:
        job, sparse_manifest = resolve_sparse(job, progress.message)
    plan = OutputPlan.build(job, sink, files, manifest, sparse_manifest)
    out = plan.out
    out.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(out)
    header = ledger.job
    if header is not None and header["fingerprint"] != plan.fingerprint:
        ledger.close()
        diff = "; ".join(identity_diff(header["identity"], plan.identity))
        raise OutputError(f"{sink.label} holds {'a finished' if (out / SUCCESS).exists() else 'an unfinished'} embed job "
                          f"with different model or options ({diff}); rerun with the original options to "
                          "resume, or pass --overwrite to start over")
    try:
        sink.check_resume(ledger, _resumed_schema(plan, header, ledger))
    except BaseException:
        ledger.close()
        raise
    return job, plan, ledger


def _sparse_if(job: EmbedJob, model_task: str | None) -> EmbedJob:
    """engine embed's job as task "sparse" when its model is a sparse encoder (EmbedJob then refuses the options
    that only shape dense embeddings); unchanged otherwise."""
    if job.task == "embed" and model_task == "sparse":
        return dataclasses.replace(job, task="sparse")
    return job


def _resumed_schema(plan: OutputPlan, header: dict | None, ledger: Ledger) -> pa.Schema | None:
    """The part schema of the job the ledger records (its scan fixes the id and kept columns' types), or None."""
    if header is None:
        return None
    scanned = plan.scanned(read_columns_schema(header["scan"]), header["scan"]["total_rows"])
    return scanned.part_schema(schema_ranges(scanned, calibration(ledger)))


def finished_summary(plan: OutputPlan, ledger: Ledger, progress: Progress, started: float) -> Summary | None:
    """The summary of an output that is already complete (nothing to do), or None when there is work left."""
    header, out = ledger.job, plan.out
    if header is None or not (out / SUCCESS).is_file() or not _reopen_if_damaged(plan, ledger, progress):
        return None
    parts = ledger.parts()
    return Summary(task=plan.job.task, output=plan.sink.label, total_rows=header["scan"]["total_rows"], written_rows=total(parts, "rows"),
                   parts=len(parts), skipped=total(parts, "skipped"), emptied=total(parts, "emptied"),
                   parts_resumed=len(parts), wall_seconds=time.perf_counter() - started, already_complete=True)


def scan_once(plan: OutputPlan, ledger: Ledger, progress: Progress) -> tuple[OutputPlan, set[int], float]:
    """Scan the input unless the ledger holds the scan already; returns the scanned plan, the parts finished by earlier
    runs (their files checked; stale and temp files removed) and the seconds spent scanning in this run."""
    header, out, job = ledger.job, plan.out, plan.job
    seconds = 0.0
    if header is None:
        ledger.reset()
        clean_stale(out, {})
        progress.message(f"scanning {len(plan.files)} input file(s)")
        scan = scan_input(job, plan.files, out, progress)
        header = {"kind": "job", "fingerprint": plan.fingerprint, "identity": plan.identity,
                  "options": job.to_dict(), "scan": scan, "created_at": time.time()}
        ledger.append(header)
        seconds = scan["seconds"]
    scan = header["scan"]
    plan = plan.scanned(read_columns_schema(scan), scan["total_rows"])
    done = clean_stale(out, ledger.parts())
    if done:
        progress.message(f"resuming: {len(done)} finished part(s) found in {out / LEDGER}")
    return plan, done, seconds


def rows_per_file(plan: OutputPlan, ledger: Ledger) -> list[int]:
    """The scan's row count of each of plan.files, in order (the ledger's JSON sorts the by-name dict's keys)."""
    scan = ledger.job["scan"]
    return scan["file_rows"] if "file_rows" in scan else [scan["rows_per_file"][f.name] for f in plan.files]


def _reopen_if_damaged(plan: OutputPlan, ledger: Ledger, progress: Progress) -> bool:
    """True when the finished output is intact (every part file at its recorded size; every row in the table);
    otherwise remove _SUCCESS, so the run redoes what is missing and a crash meanwhile never looks complete."""
    damaged = plan.sink.damaged(ledger)
    if not damaged:
        return True
    more = f" and {len(damaged) - 3} more" if len(damaged) > 3 else ""
    progress.message(f"{plan.sink.label}: missing or changed since _SUCCESS: {', '.join(damaged[:3])}{more}; "
                     "redoing what is missing")
    (plan.out / SUCCESS).unlink()
    return False
