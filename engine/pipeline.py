"""run_embed_job: scan the input, then read -> embed -> write parts, resumable and exactly-once.

Parts are planned from row numbers alone: part k holds input rows [k * rows_per_part, (k + 1) * rows_per_part), so a
rerun plans the same parts, skips those the ledger lists as finished and redoes the rest. Reading (and validating)
runs in a background thread, writing in another; the main thread only embeds. Memory is bounded by a few windows.
"""
from __future__ import annotations

import base64
import dataclasses
import os
import queue
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from export.manifest import manifest_hash

from .cache import resolve_export
from .embedder import Embedder
from .errors import InputError, OutputError
from .idcheck import KeySpill, id_keys
from .job import DEFAULT_WINDOW_ROWS, EmbedJob
from .ledger import LEDGER, LEDGER_VERSION, SUCCESS, Ledger, fingerprint, identity_diff
from .progress import Progress, Summary
from .readers import Chunk, InputFile, list_inputs, read_file
from .stages import prefetch
from .writer import METADATA_KEY, PART_PREFIX, PartWriter, calibrate_int8, convert, embedding_array, output_schema, part_name

ENGINE_VERSION = "0.1.0"


# ---------------------------------------------------------------------------------------------------------------------
# Rows: validation of text values under the bad-row policy.

@dataclass
class Piece:
    """Validated rows of one chunk slice: texts to embed, their ids and kept columns, and what was dropped."""

    texts: list[str]
    ids: pa.Array
    keep: pa.Table | None
    rows_in: int  # input rows covered, bad ones included
    skipped: int
    emptied: int


def _bad_reason(value, invalid_utf8: bool) -> str | None:
    """Why a text value cannot be embedded as is, or None when it can."""
    if type(value) is str:
        if invalid_utf8:
            return "invalid UTF-8"
        if not value:
            return "empty text"
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "invalid Unicode (lone surrogate)"
        return None
    if value is None:
        return "null text"
    if isinstance(value, str):
        return None
    return f"non-string text ({type(value).__name__})"


def validate(chunk: Chunk, start: int, stop: int, policy: str, first_row: int, id_column: str | None,
             keep_columns: tuple[str, ...] = ()) -> Piece:
    """Rows [start, stop) of a chunk under the bad-row policy; first_row is the chunk's global row number."""
    texts_in = chunk.texts[start:stop]
    ids = _ids(chunk, start, stop, first_row, id_column)
    keep_mask, texts, emptied = None, [], 0
    for i, value in enumerate(texts_in):
        reason = _bad_reason(value, (start + i) in chunk.bad_utf8)
        if reason is None:
            texts.append(value)
            continue
        if policy == "error":
            raise InputError(f"{chunk.file.name}, {chunk.where(start + i)} (id {ids[i].as_py()!r}): {reason}; "
                             "pass --on-bad-row skip to drop such rows or --on-bad-row empty to embed them as ''")
        if policy == "empty":
            texts.append("")
            emptied += 1
        else:
            if keep_mask is None:
                keep_mask = np.ones(len(texts_in), dtype=bool)
            keep_mask[i] = False
    keep = chunk.columns.select(list(keep_columns)).slice(start, stop - start) if keep_columns else None
    if keep_mask is not None:
        mask = pa.array(keep_mask)
        ids = ids.filter(mask)
        keep = keep.filter(mask) if keep is not None else None
    skipped = 0 if keep_mask is None else int((~keep_mask).sum())
    return Piece(texts=texts, ids=ids, keep=keep, rows_in=stop - start, skipped=skipped, emptied=emptied)


def _ids(chunk: Chunk, start: int, stop: int, first_row: int, id_column: str | None) -> pa.Array:
    """Row numbers, or the id column (which must have no nulls)."""
    if id_column is None:
        return pa.array(np.arange(first_row + start, first_row + stop, dtype=np.int64))
    col = chunk.columns.column(id_column).slice(start, stop - start).combine_chunks()
    if col.null_count:
        i = next(k for k, v in enumerate(col.is_null().to_pylist()) if v)
        raise InputError(f"{chunk.file.name}, {chunk.where(start + i)}: the id (--id-column {id_column!r}) is null; "
                         "every row needs an id")
    return col


# ---------------------------------------------------------------------------------------------------------------------
# Scan: one pass before any embedding. Counts rows, applies the bad-row policy (so a bad row fails in minutes, not
# hours in), settles the kept columns' types, and checks ids for duplicates with bounded memory.

def _keep_names(job: EmbedJob) -> list[str]:
    return list(job.keep_columns)


def _chunks(job: EmbedJob, files: list[InputFile]) -> Iterator[tuple[int, Chunk]]:
    """(global row number of the chunk's first row, chunk) over every file in order."""
    row = 0
    for f in files:
        for chunk in read_file(f, job.text_column, job.id_column, job.keep_columns, job.window_rows):
            yield row, chunk
            row += len(chunk.texts)


def scan_input(job: EmbedJob, files: list[InputFile], spill_parent: Path, progress: Progress) -> dict:
    """Validate every row, count rows per file, unify column types, refuse duplicate ids (unless allowed)."""
    started = time.perf_counter()
    check_ids = job.id_column is not None and not job.allow_duplicate_ids
    keep_names = _keep_names(job)
    schema: pa.Schema | None = None
    per_file: dict[str, int] = {f.name: 0 for f in files}
    total = skipped = emptied = 0
    spill = KeySpill(spill_parent) if check_ids else None
    try:
        for row, chunk in _chunks(job, files):
            piece = validate(chunk, 0, len(chunk.texts), job.on_bad_row, row, job.id_column)  # raises under 'error'
            n = len(chunk.texts)
            total += n
            per_file[chunk.file.name] += n
            skipped += piece.skipped
            emptied += piece.emptied
            cols = _column_schema(chunk, job.id_column, keep_names)
            try:
                schema = cols if schema is None else pa.unify_schemas([schema, cols], promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
                raise InputError(f"{chunk.file.name}, {chunk.where(0)}: a column's type differs from earlier rows "
                                 f"and cannot be reconciled ({err})") from None
            if spill is not None:
                spill.add(id_keys(chunk.columns.column(job.id_column).combine_chunks()))
            progress.scanning(total)
        if spill is not None:
            candidates = spill.duplicates()
            if len(candidates):
                _report_duplicates(job, files, candidates)
    finally:
        if spill is not None:
            spill.close()
    if schema is None:
        schema = pa.schema([pa.field(job.id_column, pa.int64())] if job.id_column else []
                           + [pa.field(c, pa.null()) for c in keep_names])
    progress.message(f"scanned {total:,} rows in {len(files)} file(s) in {time.perf_counter() - started:.1f}s"
                     + (f" ({skipped:,} bad rows will be skipped)" if skipped else "")
                     + (f" ({emptied:,} bad rows will be embedded as '')" if emptied else ""))
    return {"total_rows": total, "rows_per_file": per_file, "skipped": skipped, "emptied": emptied,
            "columns_schema": base64.b64encode(schema.serialize().to_pybytes()).decode(),
            "seconds": round(time.perf_counter() - started, 3)}


def _column_schema(chunk: Chunk, id_column: str | None, keep_names: list[str]) -> pa.Schema:
    names = ([id_column] if id_column else []) + [c for c in keep_names if c != id_column]
    return pa.schema([chunk.columns.schema.field(c) for c in names])


def _report_duplicates(job: EmbedJob, files: list[InputFile], candidates: np.ndarray) -> None:
    """Second pass over the ids whose keys collided: raise naming real duplicates (hash collisions are ignored)."""
    seen: dict = {}
    dups: dict = {}
    cand = np.sort(candidates)
    for row, chunk in _chunks(job, files):
        ids = chunk.columns.column(job.id_column).combine_chunks()
        hits = np.nonzero(np.isin(id_keys(ids), cand))[0]
        for i in hits:
            value = ids[int(i)].as_py()
            where = f"{chunk.file.name} {chunk.where(int(i))}"
            if value in seen:
                dups.setdefault(value, [seen[value]]).append(where)
            else:
                seen[value] = where
    if dups:
        first = next(iter(dups.items()))
        more = f" ({len(dups) - 1} more duplicated ids)" if len(dups) > 1 else ""
        raise InputError(f"duplicate id {first[0]!r} (--id-column {job.id_column!r}) at {' and '.join(first[1][:3])}{more}; "
                         "ids must be unique, or pass --allow-duplicate-ids")


# ---------------------------------------------------------------------------------------------------------------------
# Windows: validated rows grouped per part, at most about window_rows texts each.

@dataclass
class Window:
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

    for row, chunk in _chunks(job, files):
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
# Writer thread: row groups into the current part's temp file; commits rename the part and record it in the ledger.

class _WriterThread:
    def __init__(self, folder: Path, ledger: Ledger) -> None:
        self.folder, self.ledger = folder, ledger
        self.q: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self._writer: PartWriter | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="engine-embed-writer")
        self._thread.start()

    def put(self, op: tuple) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.q.put(op, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        try:
            while True:
                op = self.q.get()
                if op is None:
                    return
                kind, part, payload = op
                if kind == "rows":
                    table, schema = payload
                    if self._writer is None:
                        self._writer = PartWriter(self.folder, part, schema)
                    self._writer.write(table)
                else:  # commit
                    name, size = self._writer.commit() if self._writer is not None else (None, 0)
                    self._writer = None
                    self.ledger.append(payload | {"file": name, "bytes": size, "committed_at": time.time()})
        except BaseException as err:  # surfaced in the main thread by put() / close()
            self.error = err
            if self._writer is not None:
                self._writer.abort()
            while True:  # drain so the producer never blocks
                try:
                    if self.q.get(timeout=0.5) is None:
                        return
                except queue.Empty:
                    return

    def close(self) -> None:
        self.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def abandon(self) -> None:
        """Stop after the queued work without committing the open part (its temp file is removed on resume)."""
        deadline = time.monotonic() + 60
        while self._thread.is_alive() and time.monotonic() < deadline:
            try:
                self.q.put(None, timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join(timeout=max(0.0, deadline - time.monotonic()))


# ---------------------------------------------------------------------------------------------------------------------
# The job.

def job_identity(job: EmbedJob, embedder: Embedder, files: list[InputFile]) -> dict:
    """Everything that decides which rows land in which part and what their vectors are (not device or batching)."""
    paths = [f.path.resolve() for f in files]
    root = Path(os.path.commonpath(paths)) if len(paths) > 1 else paths[0].parent
    cfg = embedder.config
    stride = (cfg.chunk_stride if cfg.chunk_stride is not None else embedder.max_length // 8) if cfg.long_text == "chunk" else None
    return {
        "ledger_version": LEDGER_VERSION,
        "model_manifest_hash": manifest_hash(embedder.manifest),
        "model": embedder.manifest["source"]["model"],
        "max_length": embedder.max_length,
        "long_text": cfg.long_text,
        "chunk_stride": stride,
        "input": [[str(p.relative_to(root)), f.size] for p, f in zip(paths, files)],
        "text_column": job.text_column,
        "id_column": job.id_column,
        "keep_columns": list(job.keep_columns),
        "dtype": job.dtype,
        "on_bad_row": job.on_bad_row,
        "rows_per_part": job.rows_per_part,
    }


def _prepare_folder(out: Path, files: list[InputFile], overwrite: bool) -> None:
    """Refuse a file, or a non-empty folder not written by engine embed, unless overwrite; with overwrite, empty it."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file; OUTPUT must be a folder")
    resolved = out.resolve()
    for f in files:
        if resolved in f.path.resolve().parents:
            raise OutputError(f"the input file {f.name} lies inside OUTPUT {out}; choose an output folder outside the input")
    if not out.is_dir():
        return
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    if overwrite:
        if (out / LEDGER).exists():
            Ledger(out).close()  # raises if another run holds the lock
        for p in out.iterdir():
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        return
    if LEDGER not in entries:
        shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
        raise OutputError(f"{out} is not empty and was not written by engine embed (it holds {shown}); "
                          "choose another folder, or pass --overwrite to delete its contents")


def _clean_stale(out: Path, done: dict[int, dict]) -> set[int]:
    """Remove temp files and part files the ledger does not vouch for; return the parts whose files check out."""
    keep = set()
    for k, rec in done.items():
        if rec["file"] is None:
            keep.add(k)
        elif (out / rec["file"]).is_file() and (out / rec["file"]).stat().st_size == rec["bytes"]:
            keep.add(k)
    valid_files = {done[k]["file"] for k in keep if done[k]["file"]}
    for p in out.iterdir():
        name = p.name
        if (name.startswith(f".{PART_PREFIX}") and name.endswith(".tmp")) or name.startswith("._SUCCESS.tmp"):
            p.unlink()
        elif name.startswith(PART_PREFIX) and name.endswith(".parquet") and name not in valid_files:
            p.unlink()
        elif name.startswith(".engine-idcheck-") and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
    return keep


def _metadata(job: EmbedJob, embedder: Embedder, identity: dict, ranges) -> dict:
    m = embedder.manifest
    meta = {
        "engine_version": ENGINE_VERSION,
        "model": m["source"]["model"],
        "model_manifest_hash": identity["model_manifest_hash"],
        "architecture": m["architecture"],
        "dim": embedder.dim,
        "dtype": job.dtype,
        "pooling": m["pooling"],
        "normalize": m["normalize"],
        "precision": m["precision"],
        "max_length": embedder.max_length,
        "long_text": identity["long_text"],
        "chunk_stride": identity["chunk_stride"],
        "text_column": job.text_column,
        "id": job.id_column or "row number",
    }
    if job.dtype == "int8":
        meta["int8"] = {"scheme": "sentence-transformers int8: q = floor((x - min) / ((max - min) / 255)) - 128, clipped",
                        "ranges": np.asarray(ranges).tolist()}
    if job.dtype == "binary":
        meta["binary"] = "numpy.packbits(x > 0) along the dimension (sentence-transformers 'ubinary'), big-endian bits"
    return meta


def run_embed_job(job: EmbedJob, progress: Progress | None = None, embedder: Embedder | None = None) -> Summary:
    """Embed job.input into job.output; resumes an unfinished output with the same fingerprint."""
    started = time.perf_counter()
    progress = progress or Progress.for_job(job.quiet)
    timings: dict[str, float] = {}
    out = Path(job.output)
    files = list_inputs(job.input)
    if not Path(job.input).is_file():
        # An OUTPUT inside an input folder (or glob): its own parts are never input (the input would grow every run).
        outside = [f for f in files if out.resolve() not in f.path.resolve().parents]
        if not outside:
            raise OutputError(f"the input {job.input} lies inside OUTPUT {out}; choose an output folder outside the input")
        files = outside
    _prepare_folder(out, files, job.overwrite)
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
                           written_rows=sum(p["rows"] for p in parts.values()), parts=len(parts),
                           skipped=sum(p["skipped"] for p in parts.values()), emptied=sum(p["emptied"] for p in parts.values()),
                           parts_resumed=len(parts), wall_seconds=time.perf_counter() - started, already_complete=True)
        scanned = header is None
        if scanned:
            ledger.reset()
            _clean_stale(out, {})
            progress.message(f"scanning {len(files)} input file(s)")
            scan = scan_input(job, files, out, progress)
            header = {"kind": "job", "fingerprint": fp, "identity": identity, "options": job.to_dict(), "scan": scan,
                      "created_at": time.time()}
            ledger.append(header)
        scan = header["scan"]
        timings["scan"] = scan["seconds"] if scanned else 0.0
        columns = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(scan["columns_schema"])))
        done = _clean_stale(out, ledger.parts())
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


def _embed(job, files, out, ledger, embedder, identity, columns, done, scan, progress, timings) -> Summary:
    id_type = columns.field(job.id_column).type if job.id_column else pa.int64()
    keep_schema = pa.schema([columns.field(c) for c in job.keep_columns])
    cal = ledger.calibration
    ranges = np.asarray(cal["ranges"], dtype=np.float32) if cal else None
    schema = None if job.dtype == "int8" and ranges is None else output_schema(
        id_type, keep_schema, job.dtype, embedder.dim, _metadata(job, embedder, identity, ranges))
    parts_done = ledger.parts()
    summary = Summary(output=str(out), total_rows=scan["total_rows"], parts_resumed=len(done))
    progress.start(scan["total_rows"], sum(parts_done[k]["input_rows"] for k in done))
    t = time.perf_counter()
    encode_seconds = 0.0
    writer = _WriterThread(out, ledger)
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
                    schema = output_schema(id_type, keep_schema, job.dtype, embedder.dim, _metadata(job, embedder, identity, ranges))
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


def _finish(job, out, ledger, embedder, identity, fp, scan, summary, columns) -> None:
    """Check that every part is there exactly once, write an empty part when no rows were written, then _SUCCESS."""
    parts = ledger.parts()
    expected = -(-scan["total_rows"] // job.rows_per_part)
    if sorted(parts) != list(range(expected)) or sum(p["input_rows"] for p in parts.values()) != scan["total_rows"]:
        raise OutputError(f"{out}: the finished parts do not cover the input exactly ({len(parts)} parts for "
                          f"{scan['total_rows']} rows, {expected} expected); rerun the same command to redo the missing ones")
    written = sum(p["rows"] for p in parts.values())
    skipped = sum(p["skipped"] for p in parts.values())
    files = sorted(p["file"] for p in parts.values() if p["file"])
    if not files:  # nothing written: one empty part so readers still see the schema
        id_type = columns.field(job.id_column).type if job.id_column else pa.int64()
        cal = ledger.calibration
        ranges = np.asarray(cal["ranges"], dtype=np.float32) if cal else calibrate_int8(np.zeros((0, embedder.dim), np.float32))
        schema = output_schema(id_type, pa.schema([columns.field(c) for c in job.keep_columns]), job.dtype, embedder.dim,
                               _metadata(job, embedder, identity, ranges))
        name, _ = PartWriter(out, 0, schema).commit()
        files = [name]
    summary.written_rows = written
    summary.skipped = skipped
    summary.emptied = sum(p["emptied"] for p in parts.values())
    summary.parts = len(parts)
    from .writer import write_success
    write_success(out, {
        "engine_version": ENGINE_VERSION,
        "fingerprint": fp,
        "model": identity["model"],
        "model_manifest_hash": identity["model_manifest_hash"],
        "identity": identity,
        "options": job.to_dict(),
        "rows": {"input": scan["total_rows"], "written": written, "skipped": skipped, "emptied": summary.emptied},
        "real_tokens": sum(p["real_tokens"] for p in parts.values()),
        "truncated": sum(p["truncated"] for p in parts.values()),
        "parts": len(parts),
        "files": files,
        "last_run": summary.to_dict(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })


__all__ = ["run_embed_job", "scan_input", "windows", "validate", "job_identity", "METADATA_KEY", "part_name"]
