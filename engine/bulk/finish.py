"""The end of every embed run (local or Ray): check that the parts cover the input exactly once, then _SUCCESS."""
from __future__ import annotations

import time

import numpy as np

from ..errors import OutputError
from .ledger import Ledger
from .output.parts import PartWriter, calibrate_int8, write_success
from .plan import ENGINE_VERSION, OutputPlan
from .progress import Summary
from .resume import calibration, total


def finish_output(plan: OutputPlan, ledger: Ledger, summary: Summary) -> None:
    """Check that every part is there exactly once, write an empty part when no rows were written, then _SUCCESS."""
    job, out, total_rows = plan.job, plan.out, plan.total_rows
    parts = ledger.parts()
    expected = -(-total_rows // job.rows_per_part)
    if sorted(parts) != list(range(expected)) or total(parts, "input_rows") != total_rows:
        raise OutputError(f"{out}: the finished parts do not cover the input exactly ({len(parts)} parts for "
                          f"{total_rows} rows, {expected} expected); rerun the same command to redo the missing ones")
    written = total(parts, "rows")
    skipped = total(parts, "skipped")
    files = sorted(p["file"] for p in parts.values() if p["file"])
    if not files:  # nothing written: one empty part so readers still see the schema
        ranges = calibration(ledger)
        if ranges is None:  # int8 and no row ever embedded: the metadata still needs ranges
            ranges = calibrate_int8(np.zeros((0, plan.dim), np.float32))
        name, _ = PartWriter(out, 0, plan.part_schema(ranges)).commit()
        files = [name]
    summary.written_rows = written
    summary.skipped = skipped
    summary.emptied = total(parts, "emptied")
    summary.parts = len(parts)
    write_success(out, {
        "engine_version": ENGINE_VERSION,
        "fingerprint": plan.fingerprint,
        "model": plan.identity["model"],
        "model_manifest_hash": plan.identity["model_manifest_hash"],
        "identity": plan.identity,
        "options": job.to_dict(),
        "rows": {"input": total_rows, "written": written, "skipped": skipped, "emptied": summary.emptied},
        "real_tokens": total(parts, "real_tokens"),
        "truncated": total(parts, "truncated"),
        "parts": len(parts),
        "files": files,
        "last_run": summary.to_dict(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
