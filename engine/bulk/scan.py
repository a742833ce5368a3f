"""The scan pass over an embed job's input, run before any embedding.

The scan counts rows, applies the bad-row policy (so a bad row fails in minutes, not hours in), settles the kept
columns' types, and checks ids for duplicates with bounded memory.
"""
from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..errors import InputError
from .idcheck import KeySpill, id_keys
from .input import Chunk, InputFile, read_file
from .job import EmbedJob
from .progress import Progress
from .rows import apply_policy, id_kind


def read_chunks(job: EmbedJob, files: list[InputFile], rows: range | None = None,
                rows_per_file: list[int] | None = None) -> Iterator[tuple[int, Chunk]]:
    """(global row number of the chunk's first row, chunk) over every file in order.

    With rows (a range of global row numbers) and the scan's row count of each file, only those rows are read: files
    wholly before or after the range are not opened, and read_file skips what it can inside a file.
    """
    start, stop = (rows.start, rows.stop) if rows is not None else (0, None)
    base = 0  # global row number of the current file's first row
    for i, f in enumerate(files):
        known = rows_per_file[i] if rows_per_file is not None else None
        if stop is not None and base >= stop:
            return
        if known is not None and base + known <= start:
            base += known
            continue
        row = base
        for chunk in read_file(f, job.text_column, job.id_column, job.keep_columns, job.window_rows,
                               start_row=max(0, start - base), query_column=job.query_column):
            row = base + chunk.file_row
            if stop is not None and row + len(chunk.texts) > stop:
                chunk = chunk.slice(0, max(0, stop - row))
            if stop is not None and row >= stop:
                break
            yield row, chunk
            row += len(chunk.texts)
        base = base + known if known is not None else row


def scan_input(job: EmbedJob, files: list[InputFile], spill_parent: Path, progress: Progress) -> dict:
    """Validate every row, count rows per file, unify column types, refuse duplicate ids (unless allowed)."""
    started = time.perf_counter()
    check_ids = job.id_column is not None and not job.allow_duplicate_ids
    keep_names = list(job.keep_columns)
    schema: pa.Schema | None = None
    per_file: dict[str, int] = {f.name: 0 for f in files}
    total = skipped = emptied = 0
    id_type: tuple[pa.DataType, str] | None = None  # the id column's type so far, and where it was first seen
    spill = KeySpill(spill_parent) if check_ids else None
    try:
        for row, chunk in read_chunks(job, files):
            piece = apply_policy(chunk, 0, len(chunk.texts), job.on_bad_row, row, job.id_column,
                                 columns=job.pair_columns)  # raises under 'error'
            n = len(chunk.texts)
            total += n
            per_file[chunk.file.name] += n
            skipped += piece.skipped
            emptied += piece.emptied
            cols = _column_schema(chunk, job.id_column, keep_names)
            if job.id_column and len(chunk.texts):
                id_type = _check_id_type(chunk, job.id_column, id_type)
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
    if schema is None:  # no rows at all: ids as row numbers would be, kept columns of no type
        schema = pa.schema(([pa.field(job.id_column, pa.int64())] if job.id_column else [])
                           + [pa.field(c, pa.null()) for c in keep_names if c != job.id_column])
    progress.message(f"scanned {total:,} rows in {len(files)} file(s) in {time.perf_counter() - started:.1f}s"
                     + (f" ({skipped:,} bad rows will be skipped)" if skipped else "")
                     + (f" ({emptied:,} bad rows will be embedded as '')" if emptied else ""))
    return {"total_rows": total, "rows_per_file": per_file, "file_rows": [per_file[f.name] for f in files],
            "skipped": skipped, "emptied": emptied,
            "columns_schema": base64.b64encode(schema.serialize().to_pybytes()).decode(),
            "seconds": round(time.perf_counter() - started, 3)}


def read_columns_schema(scan: dict) -> pa.Schema:
    """The id and kept columns' schema that scan_input settled, from its (JSON-ready) result."""
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(scan["columns_schema"])))


def _check_id_type(chunk: Chunk, id_column: str, before: tuple[pa.DataType, str] | None) -> tuple[pa.DataType, str]:
    """Refuse an id column whose kind changes (integers, then floats or strings) or that mixes signed and unsigned
    64-bit integers: no one type holds both without changing ids. Returns the type so far and where it was seen."""
    t = chunk.columns.schema.field(id_column).type
    here = f"{chunk.file.name} {chunk.where(0)}"
    if before is None or t == before[0]:
        return (t, here) if before is None else before
    old, where = before
    kinds = id_kind(old), id_kind(t)
    mixed_sign = kinds == ("integer", "integer") and pa.uint64() in (old, t) and \
        not (pa.types.is_unsigned_integer(old) and pa.types.is_unsigned_integer(t))
    if kinds[0] != kinds[1] or mixed_sign:
        raise InputError(f"the id column {id_column!r} holds {old} values at {where} but {t} values from {here}; ids "
                         "must have one type (all integers or all strings): fix the input, or omit --id-column for row numbers")
    return before


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
