"""run_embed_job: scan the input, then read -> embed -> write parts, resumable and exactly-once.

Parts are planned from row numbers alone: part k holds input rows [k * rows_per_part, (k + 1) * rows_per_part), so a
rerun plans the same parts, skips those the ledger lists as finished and redoes the rest. Reading (and validating)
runs in a background thread, writing in another; the main thread only embeds. Memory is bounded by a few windows.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from .cache import resolve_export
from .embedder import Embedder
from .errors import OutputError
from .job import DEFAULT_WINDOW_ROWS, EmbedJob
from .ledger import LEDGER, SUCCESS, Ledger, fingerprint, identity_diff
from .output_folder import ENGINE_VERSION, build_metadata, clean_stale, exclude_output, job_identity, prepare_folder
from .progress import Progress, Summary
from .readers import InputFile, list_inputs
from .scan import Piece, read_chunks, read_columns_schema, scan_input, validate
from .stages import prefetch
from .writer import (METADATA_KEY, PartWriter, calibrate_int8, convert, embedding_array, output_schema, part_name,
                     write_success)
from .writer_thread import WriterThread


# ---------------------------------------------------------------------------------------------------------------------
# Windows: validated rows grouped per part, at most about window_rows texts each.

@dataclass
class Window:
    """Validated rows of one part handed to the Embedder at once; the last window of a part closes it."""

    part: int
    texts: list[str]
    ids: pa.Array | None
    keep: pa.Table | None
    rows_in: int
    skipped: int
    emptied: int
    closes_part: bool


def windows(job: EmbedJob, files: list[InputFile], done: set[int], keep_schema: pa.Schema, id_type: pa.DataType) -> Iterator[Window]:
    """Read every row in order, drop those of finished parts, yield windows; the last window of a part closes it."""
    R, W = job.rows_per_part, job.window_rows
    buf: list[Piece] = []
    current: int | None = None

    def flush(closes: bool) -> Window:
        texts = [t for p in buf for t in p.texts]
        ids = pa.concat_arrays([p.ids.cast(id_type) for p in buf]) if buf else None
        keep = pa.concat_tables([p.keep.cast(keep_schema) for p in buf]) if buf and keep_schema.names else None
        w = Window(part=current, texts=texts, ids=ids, keep=keep, rows_in=sum(p.rows_in for p in buf),
                   skipped=sum(p.skipped for p in buf), emptied=sum(p.emptied for p in buf), closes_part=closes)
        buf.clear()
        return w

    for row, chunk in read_chunks(job, files):
        n, pos = len(chunk.texts), 0
        while pos < n:
            part = (row + pos) // R
            end = min(n, (part + 1) * R - row)
            if part != current:
                if current is not None and current not in done:
                    yield flush(True)
                current = part
            if part not in done:
                buf.append(validate(chunk, pos, end, job.on_bad_row, row, job.id_column, job.keep_columns))
                if sum(len(p.texts) for p in buf) >= W:
                    yield flush(False)
            pos = end
    if current is not None and current not in done:
        yield flush(True)


# ---------------------------------------------------------------------------------------------------------------------
# The job.

def _column_types(job: EmbedJob, columns: pa.Schema) -> tuple[pa.DataType, pa.Schema]:
    """The id's type and the kept columns' schema, as the scan settled them."""
    id_type = columns.field(job.id_column).type if job.id_column else pa.int64()
    return id_type, pa.schema([columns.field(c) for c in job.keep_columns])


def _part_schema(job: EmbedJob, embedder: Embedder, identity: dict, columns: pa.Schema,
                 ranges: NDArray[np.float32] | None) -> pa.Schema:
    """The schema of every output part, metadata included."""
    id_type, keep_schema = _column_types(job, columns)
    return output_schema(id_type, keep_schema, job.dtype, embedder.dim, build_metadata(job, embedder, identity, ranges))


def _calibration(ledger: Ledger) -> NDArray[np.float32] | None:
    """The int8 ranges recorded in the ledger, or None before the first window was embedded."""
    cal = ledger.calibration
    return np.asarray(cal["ranges"], dtype=np.float32) if cal else None


def _total(parts: dict[int, dict], key: str) -> int:
    """One count summed over the ledger's part records."""
    return sum(p[key] for p in parts.values())


def run_embed_job(job: EmbedJob, progress: Progress | None = None, embedder: Embedder | None = None) -> Summary:
    """Embed job.input into job.output; resumes an unfinished output with the same fingerprint."""
    started = time.perf_counter()
    progress = progress or Progress.for_job(job.quiet)
    timings: dict[str, float] = {}
    out = Path(job.output)
    files = exclude_output(job.input, list_inputs(job.input), out)
    prepare_folder(out, files, job.overwrite)
    t = time.perf_counter()
    if embedder is None:
        resolve_export(job.embedder, log=progress.message)  # a model folder is exported once, into the cache; say so
        embedder = Embedder.from_config(job.embedder)
    timings["model_load"] = time.perf_counter() - t
    if job.window_rows is None:  # not part of the fingerprint: it changes batching, not results
        job = dataclasses.replace(job, window_rows=DEFAULT_WINDOW_ROWS[embedder.device])
    identity = job_identity(job, embedder, files)
    fp = fingerprint(identity)
    out.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(out)
    try:
        header = ledger.job
        if header is not None and header["fingerprint"] != fp:
            diff = "; ".join(identity_diff(header["identity"], identity))
            raise OutputError(f"{out} holds {'a finished' if (out / SUCCESS).exists() else 'an unfinished'} embed job "
                              f"with different model or options ({diff}); rerun with the original options to "
                              "resume, or pass --overwrite to start over")
        if header is not None and (out / SUCCESS).is_file():
            parts = ledger.parts()
            return Summary(output=str(out), total_rows=header["scan"]["total_rows"],
                           written_rows=_total(parts, "rows"), parts=len(parts),
                           skipped=_total(parts, "skipped"), emptied=_total(parts, "emptied"),
                           parts_resumed=len(parts), wall_seconds=time.perf_counter() - started, already_complete=True)
        scanned = header is None
        if scanned:
            ledger.reset()
            clean_stale(out, {})
            progress.message(f"scanning {len(files)} input file(s)")
            scan = scan_input(job, files, out, progress)
            header = {"kind": "job", "fingerprint": fp, "identity": identity, "options": job.to_dict(), "scan": scan,
                      "created_at": time.time()}
            ledger.append(header)
        scan = header["scan"]
        timings["scan"] = scan["seconds"] if scanned else 0.0
        columns = read_columns_schema(scan)
        done = clean_stale(out, ledger.parts())
        if done:
            progress.message(f"resuming: {len(done)} finished part(s) found in {out / LEDGER}")
        summary = _embed(job, files, out, ledger, embedder, identity, columns, done, scan, progress, timings)
        summary.wall_seconds = time.perf_counter() - started
        summary.timings = {k: round(v, 3) for k, v in timings.items()} | {"total": round(summary.wall_seconds, 3)}
        _finish(job, out, ledger, embedder, identity, fp, scan, summary, columns)
        progress.finish(summary)
        return summary
    finally:
        ledger.close()


def _embed(job: EmbedJob, files: list[InputFile], out: Path, ledger: Ledger, embedder: Embedder, identity: dict,
           columns: pa.Schema, done: set[int], scan: dict, progress: Progress, timings: dict[str, float]) -> Summary:
    """Embed the rows of every unfinished part, handing row groups and part commits to the writer thread."""
    id_type, keep_schema = _column_types(job, columns)
    ranges = _calibration(ledger)
    schema = None if job.dtype == "int8" and ranges is None else _part_schema(job, embedder, identity, columns, ranges)
    parts_done = ledger.parts()
    summary = Summary(output=str(out), total_rows=scan["total_rows"], parts_resumed=len(done))
    progress.start(scan["total_rows"], sum(parts_done[k]["input_rows"] for k in done))
    t = time.perf_counter()
    encode_seconds = 0.0
    writer = WriterThread(out, ledger)
    part_stats: dict = {}
    try:
        for w in prefetch(windows(job, files, done, keep_schema, id_type), depth=2):
            st = part_stats.setdefault(w.part, {"rows": 0, "input_rows": 0, "skipped": 0, "emptied": 0, "real_tokens": 0,
                                                "truncated": 0, "started": time.perf_counter()})
            tokens = truncated = 0
            if w.texts:
                before = (embedder.stats.real_tokens, embedder.stats.truncated, embedder.stats.seconds)
                emb = embedder.encode(w.texts)
                tokens = embedder.stats.real_tokens - before[0]
                truncated = embedder.stats.truncated - before[1]
                encode_seconds += embedder.stats.seconds - before[2]
                if schema is None:  # int8: calibrate on the first window embedded, before any part is written
                    ranges = calibrate_int8(emb)
                    ledger.append({"kind": "calibration", "ranges": ranges.tolist(), "rows": len(emb)})
                    schema = _part_schema(job, embedder, identity, columns, ranges)
                arrays = [w.ids] + (w.keep.columns if w.keep is not None else []) + [embedding_array(convert(emb, job.dtype, ranges), job.dtype, embedder.dim)]
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


def _finish(job: EmbedJob, out: Path, ledger: Ledger, embedder: Embedder, identity: dict, fp: str, scan: dict,
            summary: Summary, columns: pa.Schema) -> None:
    """Check that every part is there exactly once, write an empty part when no rows were written, then _SUCCESS."""
    parts = ledger.parts()
    expected = -(-scan["total_rows"] // job.rows_per_part)
    if sorted(parts) != list(range(expected)) or _total(parts, "input_rows") != scan["total_rows"]:
        raise OutputError(f"{out}: the finished parts do not cover the input exactly ({len(parts)} parts for "
                          f"{scan['total_rows']} rows, {expected} expected); rerun the same command to redo the missing ones")
    written = _total(parts, "rows")
    skipped = _total(parts, "skipped")
    files = sorted(p["file"] for p in parts.values() if p["file"])
    if not files:  # nothing written: one empty part so readers still see the schema
        ranges = _calibration(ledger)
        if ranges is None:  # int8 and no row ever embedded: the metadata still needs ranges
            ranges = calibrate_int8(np.zeros((0, embedder.dim), np.float32))
        name, _ = PartWriter(out, 0, _part_schema(job, embedder, identity, columns, ranges)).commit()
        files = [name]
    summary.written_rows = written
    summary.skipped = skipped
    summary.emptied = _total(parts, "emptied")
    summary.parts = len(parts)
    write_success(out, {
        "engine_version": ENGINE_VERSION,
        "fingerprint": fp,
        "model": identity["model"],
        "model_manifest_hash": identity["model_manifest_hash"],
        "identity": identity,
        "options": job.to_dict(),
        "rows": {"input": scan["total_rows"], "written": written, "skipped": skipped, "emptied": summary.emptied},
        "real_tokens": _total(parts, "real_tokens"),
        "truncated": _total(parts, "truncated"),
        "parts": len(parts),
        "files": files,
        "last_run": summary.to_dict(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })


__all__ = ["run_embed_job", "scan_input", "windows", "validate", "job_identity", "METADATA_KEY", "part_name"]
