"""The end of every embed run (local or Ray): check that the parts cover the input exactly once, let the sink finish its
output (an empty part, or the LanceDB table's checks, compaction and index), then write _SUCCESS, last."""
from __future__ import annotations

import time

from ..errors import OutputError
from .ledger import Ledger
from .output.parts import write_success
from .plan import ENGINE_VERSION, OutputPlan
from .progress import Progress, Summary
from .partstats import total
from .resume import calibration


def finish_run(plan: OutputPlan, ledger: Ledger, summary: Summary, progress: Progress, started: float,
               timings: dict[str, float]) -> Summary:
    """Finish the output, fill in the summary's totals and timings, write _SUCCESS and close the progress display."""
    job, total_rows = plan.job, plan.total_rows
    parts = ledger.parts()
    expected = -(-total_rows // job.rows_per_part)
    if sorted(parts) != list(range(expected)) or total(parts, "input_rows") != total_rows:
        raise OutputError(f"{plan.sink.label}: the finished parts do not cover the input exactly ({len(parts)} parts "
                          f"for {total_rows} rows, {expected} expected); rerun the same command to redo the missing ones")
    t = time.perf_counter()
    finished = plan.sink.finish(plan, ledger, calibration(ledger), progress)
    timings["finish"] = time.perf_counter() - t
    summary.notes = finished.pop("notes", [])
    summary.written_rows = total(parts, "rows")
    summary.skipped = total(parts, "skipped")
    summary.emptied = total(parts, "emptied")
    summary.parts = len(parts)
    summary.wall_seconds = time.perf_counter() - started
    summary.timings = {k: round(v, 3) for k, v in timings.items()} | {"total": round(summary.wall_seconds, 3)}
    write_success(plan.out, {
        "engine_version": ENGINE_VERSION,
        "task": job.task,
        "fingerprint": plan.fingerprint,
        "model": plan.identity["model"],
        "model_manifest_hash": plan.identity["model_manifest_hash"],
        "identity": plan.identity,
        "backend": plan.backend,
        "options": job.to_dict(),
        "rows": {"input": total_rows, "written": summary.written_rows, "skipped": summary.skipped,
                 "emptied": summary.emptied},
        "real_tokens": total(parts, "real_tokens"),
        "truncated": total(parts, "truncated"),
        "parts": len(parts),
        **finished,  # parquet: "files"; LanceDB: "table", "database", "index", "table_version"
        "last_run": summary.to_dict(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    progress.finish(summary)
    return summary
