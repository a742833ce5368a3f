"""Rows of an embed job's input: validation under the bad-row policy, ids, and the scan pass run before any embedding.

The scan counts rows, applies the bad-row policy (so a bad row fails in minutes, not hours in), settles the kept
columns' types, and checks ids for duplicates with bounded memory.
"""
from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from .errors import InputError
from .idcheck import KeySpill, id_keys
from .job import EmbedJob
from .progress import Progress
from .readers import Chunk, InputFile, read_file


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


def read_chunks(job: EmbedJob, files: list[InputFile]) -> Iterator[tuple[int, Chunk]]:
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
    keep_names = list(job.keep_columns)
    schema: pa.Schema | None = None
    per_file: dict[str, int] = {f.name: 0 for f in files}
    total = skipped = emptied = 0
    spill = KeySpill(spill_parent) if check_ids else None
    try:
        for row, chunk in read_chunks(job, files):
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


def read_columns_schema(scan: dict) -> pa.Schema:
    """The id and kept columns' schema that scan_input settled, from its (JSON-ready) result."""
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(scan["columns_schema"])))


def _column_schema(chunk: Chunk, id_column: str | None, keep_names: list[str]) -> pa.Schema:
    """The id and kept columns' fields of one chunk, in output order."""
    names = ([id_column] if id_column else []) + [c for c in keep_names if c != id_column]
    return pa.schema([chunk.columns.schema.field(c) for c in names])


def _report_duplicates(job: EmbedJob, files: list[InputFile], candidates: np.ndarray) -> None:
    """Second pass over the ids whose keys collided: raise naming real duplicates (hash collisions are ignored)."""
    seen: dict = {}
    dups: dict = {}
    cand = np.sort(candidates)
    for row, chunk in read_chunks(job, files):
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
