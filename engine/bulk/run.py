"""run_embed_job: scan the input, then read -> embed -> write parts, resumable and exactly-once.

Parts are planned from row numbers alone: part k holds input rows [k * rows_per_part, (k + 1) * rows_per_part), so a
rerun plans the same parts, skips those the ledger lists as finished and redoes the rest. Reading (and validating)
runs in a background thread, writing in another; the main thread only embeds. Memory is bounded by a few windows.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from export import read_manifest

from ..errors import OutputError
from ..runtime import Embedder
from ..runtime.models import resolve_export
from ..runtime.prefetch import prefetch
from .job import DEFAULT_WINDOW_ROWS, EmbedJob
from .ledger import LEDGER, SUCCESS, Ledger, identity_diff
from .output.folder import clean_stale, exclude_output, prepare_folder
from .output.parts import PartWriter, calibrate_int8, convert, embedding_array, write_success
from .output.writer import WriterThread
from .plan import ENGINE_VERSION, OutputPlan
from .progress import Progress, Summary
from .readers import list_inputs
from .scan import read_columns_schema, scan_input
from .windows import windows


def _calibration(ledger: Ledger) -> NDArray[np.float32] | None:
    """The int8 ranges recorded in the ledger, or None before the first window was embedded."""
    cal = ledger.calibration
    return np.asarray(cal["ranges"], dtype=np.float32) if cal else None


def _total(parts: dict[int, dict], key: str) -> int:
    """One count summed over the ledger's part records."""
    return sum(p[key] for p in parts.values())


def _reopen_if_damaged(out: Path, ledger: Ledger, progress: Progress) -> bool:
    """True when every part file the ledger and _SUCCESS list is there at its recorded size (the output is complete);
    otherwise remove _SUCCESS, so the run redoes the missing parts and a crash meanwhile never looks complete."""
    parts = ledger.parts()
    damaged = sorted(rec["file"] for rec in parts.values()
                     if rec["file"] and not ((out / rec["file"]).is_file() and (out / rec["file"]).stat().st_size == rec["bytes"]))
    try:
        listed = json.loads((out / SUCCESS).read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        listed = []
    damaged += [name for name in listed if not (out / name).is_file() and name not in damaged]
    if not damaged:
        return True
    progress.message(f"{out}: {len(damaged)} part file(s) missing or changed since _SUCCESS ({', '.join(damaged[:3])}); "
                     "redoing them")
    (out / SUCCESS).unlink()
    return False


def run_embed_job(job: EmbedJob, progress: Progress | None = None, embedder: Embedder | None = None) -> Summary:
    """Embed job.input into job.output; resumes an unfinished output with the same fingerprint.

    The model is resolved once (a model folder is exported into the cache on first use); the job's identity comes
    from the export's manifest, so a resume with other options is refused before a session is opened.
    """
    started = time.perf_counter()
    progress = progress or Progress.for_job(job.quiet)
    timings: dict[str, float] = {}
    out = Path(job.output)
    files = exclude_output(job.input, list_inputs(job.input), out)
    prepare_folder(out, files, job.overwrite)
    t = time.perf_counter()
    if embedder is None:
        folder = resolve_export(job.embedder, log=progress.message)  # exported once, into the cache; say so
        job = dataclasses.replace(job, embedder=dataclasses.replace(job.embedder, model=str(folder)))
        manifest = read_manifest(folder)
    else:
        manifest = embedder.manifest
    plan = OutputPlan.build(job, out, files, manifest)
    out.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(out)
    try:
        header = ledger.job
        if header is not None and header["fingerprint"] != plan.fingerprint:
            diff = "; ".join(identity_diff(header["identity"], plan.identity))
            raise OutputError(f"{out} holds {'a finished' if (out / SUCCESS).exists() else 'an unfinished'} embed job "
                              f"with different model or options ({diff}); rerun with the original options to "
                              "resume, or pass --overwrite to start over")
        if header is not None and (out / SUCCESS).is_file() and _reopen_if_damaged(out, ledger, progress):
            parts = ledger.parts()
            return Summary(output=str(out), total_rows=header["scan"]["total_rows"],
                           written_rows=_total(parts, "rows"), parts=len(parts),
                           skipped=_total(parts, "skipped"), emptied=_total(parts, "emptied"),
                           parts_resumed=len(parts), wall_seconds=time.perf_counter() - started, already_complete=True)
        embedder = embedder or Embedder.from_config(job.embedder)
        timings["model_load"] = time.perf_counter() - t
        if job.window_rows is None:  # not part of the fingerprint: it changes batching, not results
            job = dataclasses.replace(job, window_rows=DEFAULT_WINDOW_ROWS[embedder.device])
            plan = dataclasses.replace(plan, job=job)
        scanned = header is None
        if scanned:
            ledger.reset()
            clean_stale(out, {})
            progress.message(f"scanning {len(files)} input file(s)")
            scan = scan_input(job, files, out, progress)
            header = {"kind": "job", "fingerprint": plan.fingerprint, "identity": plan.identity,
                      "options": job.to_dict(), "scan": scan, "created_at": time.time()}
            ledger.append(header)
        scan = header["scan"]
        timings["scan"] = scan["seconds"] if scanned else 0.0
        plan = plan.scanned(read_columns_schema(scan), scan["total_rows"])
        done = clean_stale(out, ledger.parts())
        if done:
            progress.message(f"resuming: {len(done)} finished part(s) found in {out / LEDGER}")
        summary = _embed(plan, ledger, embedder, done, progress, timings)
        summary.wall_seconds = time.perf_counter() - started
        summary.timings = {k: round(v, 3) for k, v in timings.items()} | {"total": round(summary.wall_seconds, 3)}
        _finish(plan, ledger, summary)
        progress.finish(summary)
        return summary
    finally:
        ledger.close()


def _embed(plan: OutputPlan, ledger: Ledger, embedder: Embedder, done: set[int], progress: Progress,
           timings: dict[str, float]) -> Summary:
    """Embed the rows of every unfinished part, handing row groups and part commits to the writer thread."""
    job = plan.job
    ranges = _calibration(ledger)
    schema = None if job.dtype == "int8" and ranges is None else plan.part_schema(ranges)
    parts_done = ledger.parts()
    summary = Summary(output=str(plan.out), total_rows=plan.total_rows, parts_resumed=len(done))
    progress.start(plan.total_rows, sum(parts_done[k]["input_rows"] for k in done))
    t = time.perf_counter()
    encode_seconds = 0.0
    writer = WriterThread(plan.out, ledger)
    part_stats: dict = {}
    try:
        for w in prefetch(windows(job, plan.files, done, plan.keep_schema, plan.id_type), depth=2):
            st = part_stats.setdefault(w.part, {"rows": 0, "input_rows": 0, "skipped": 0, "emptied": 0, "real_tokens": 0,
                                                "truncated": 0, "started": time.perf_counter()})
            tokens = truncated = 0
            if w.texts:
                before = (embedder.stats.real_tokens, embedder.stats.truncated, embedder.stats.seconds)
                emb = embedder.encode(w.texts)  # (N, D) float32
                tokens = embedder.stats.real_tokens - before[0]
                truncated = embedder.stats.truncated - before[1]
                encode_seconds += embedder.stats.seconds - before[2]
                if schema is None:  # int8: calibrate on the first window embedded, before any part is written
                    ranges = calibrate_int8(emb)
                    ledger.append({"kind": "calibration", "ranges": ranges.tolist(), "rows": len(emb)})
                    schema = plan.part_schema(ranges)
                arrays = [w.ids] + (w.keep.columns if w.keep is not None else []) \
                    + [embedding_array(convert(emb, job.dtype, ranges), job.dtype, plan.dim)]
                writer.put(("rows", w.part, (pa.Table.from_arrays(arrays, schema=schema), schema)))
            st["rows"] += len(w.texts)
            st["input_rows"] += w.rows_in
            st["skipped"] += w.skipped
            st["emptied"] += w.emptied
            st["real_tokens"] += tokens
            st["truncated"] += truncated
            summary.rows += len(w.texts)
            summary.real_tokens += tokens
            summary.truncated += truncated
            if w.closes_part:
                st = part_stats.pop(w.part)
                record = {"kind": "part", "part": w.part, "first_row": w.part * job.rows_per_part,
                          "seconds": round(time.perf_counter() - st.pop("started"), 3)} | st
                writer.put(("commit", w.part, record))
            progress.advance(w.rows_in, tokens)
    except BaseException:
        writer.abandon()
        raise
    writer.close()
    timings["embed"] = time.perf_counter() - t
    timings["encode"] = encode_seconds
    return summary


def _finish(plan: OutputPlan, ledger: Ledger, summary: Summary) -> None:
    """Check that every part is there exactly once, write an empty part when no rows were written, then _SUCCESS."""
    job, out, total_rows = plan.job, plan.out, plan.total_rows
    parts = ledger.parts()
    expected = -(-total_rows // job.rows_per_part)
    if sorted(parts) != list(range(expected)) or _total(parts, "input_rows") != total_rows:
        raise OutputError(f"{out}: the finished parts do not cover the input exactly ({len(parts)} parts for "
                          f"{total_rows} rows, {expected} expected); rerun the same command to redo the missing ones")
    written = _total(parts, "rows")
    skipped = _total(parts, "skipped")
    files = sorted(p["file"] for p in parts.values() if p["file"])
    if not files:  # nothing written: one empty part so readers still see the schema
        ranges = _calibration(ledger)
        if ranges is None:  # int8 and no row ever embedded: the metadata still needs ranges
            ranges = calibrate_int8(np.zeros((0, plan.dim), np.float32))
        name, _ = PartWriter(out, 0, plan.part_schema(ranges)).commit()
        files = [name]
    summary.written_rows = written
    summary.skipped = skipped
    summary.emptied = _total(parts, "emptied")
    summary.parts = len(parts)
    write_success(out, {
        "engine_version": ENGINE_VERSION,
        "fingerprint": plan.fingerprint,
        "model": plan.identity["model"],
        "model_manifest_hash": plan.identity["model_manifest_hash"],
        "identity": plan.identity,
        "options": job.to_dict(),
        "rows": {"input": total_rows, "written": written, "skipped": skipped, "emptied": summary.emptied},
        "real_tokens": _total(parts, "real_tokens"),
        "truncated": _total(parts, "truncated"),
        "parts": len(parts),
        "files": files,
        "last_run": summary.to_dict(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
