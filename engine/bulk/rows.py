"""Rows of an embed job's input: the bad-row policy, ids, and kept columns of one chunk slice."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..errors import InputError
from .input import Chunk

BAD_ROW_POLICIES = ("error", "skip", "empty")


@dataclass
class Piece:
    """Validated rows of one chunk slice: texts to embed (or score against queries), their ids and kept columns, and
    what was dropped."""

    texts: list[str]
    ids: pa.Array
    keep: pa.Table | None
    rows_in: int  # input rows covered, bad ones included
    skipped: int
    emptied: int
    queries: list[str] | None = None  # engine score: each text's query (None: no pairs)


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


def apply_policy(chunk: Chunk, start: int, stop: int, policy: str, first_row: int, id_column: str | None,
             keep_columns: tuple[str, ...] = (), columns: tuple[str, str] | None = None) -> Piece:
    """Rows [start, stop) of a chunk under the bad-row policy; first_row is the chunk's global row number.

    columns (engine score): the (query, text) column names; each row's query is checked as its text is."""
    texts_in = chunk.texts[start:stop]
    ids = _ids(chunk, start, stop, first_row, id_column)
    keep_mask, texts, emptied = None, [], 0
    queries = [] if columns is not None else None
    for i, value in enumerate(texts_in):
        reason = _bad_reason(value, (start + i) in chunk.bad_utf8)
        if columns is not None:
            query = chunk.queries[start + i]
            q_reason = _bad_reason(query, (start + i) in chunk.bad_query_utf8)
            reason = _pair_reason(columns, q_reason, reason)
        field = chunk.bad_fields.get(start + i) if chunk.bad_fields else None
        if reason is None and field is None:
            texts.append(value)
            if queries is not None:
                queries.append(query)
            continue
        if policy == "error":
            why = reason or f"invalid UTF-8 in the kept column {field!r}"
            fix = ("fix the input, or pass --on-bad-row skip to drop such rows or --on-bad-row empty to score them with "
                   "'' in place of the bad value" if columns is not None else
                   "pass --on-bad-row skip to drop such rows or --on-bad-row empty to embed them as ''")
            raise InputError(f"{chunk.file.name}, {chunk.where(start + i)} (id {ids[i].as_py()!r}): {why}; {fix} "
                             "(a bad kept value becomes null)")
        if policy == "empty":  # the bad value is emptied: the text (query) to '', a kept value to null (the reader's)
            texts.append(value if _bad_reason(value, (start + i) in chunk.bad_utf8) is None else "")
            if queries is not None:
                queries.append(query if q_reason is None else "")
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
    return Piece(texts=texts, ids=ids, keep=keep, rows_in=stop - start, skipped=skipped, emptied=emptied,
                 queries=queries)


def _pair_reason(columns: tuple[str, str], q_reason: str | None, t_reason: str | None) -> str | None:
    """Why a (query, text) pair cannot be scored, naming the column(s), or None when it can."""
    bad = [f"{why.replace(' text', ' value').replace('text ', 'value ')} in the {flag} {name!r}"
           for why, flag, name in ((q_reason, "--query-column", columns[0]), (t_reason, "--text-column", columns[1]))
           if why is not None]
    return "; ".join(bad) or None


def _ids(chunk: Chunk, start: int, stop: int, first_row: int, id_column: str | None) -> pa.Array:
    """Row numbers, or the id column (which must have no nulls)."""
    if id_column is None:
        return pa.array(np.arange(first_row + start, first_row + stop, dtype=np.int64))
    col = chunk.columns.column(id_column).slice(start, stop - start).combine_chunks()
    if col.null_count:
        i = next(k for k, v in enumerate(col.is_null().to_pylist()) if v)
        raise InputError(f"{chunk.file.name}, {chunk.where(start + i)}: the id (--id-column {id_column!r}) is null; "
                         "every row needs an id")
    if id_kind(col.type) is None:
        raise InputError(f"{chunk.file.name}, {chunk.where(start)}: the id column {id_column!r} holds {col.type} values; "
                         "ids must be integers or strings (or floats); pass another --id-column, or none for row numbers")
    if pa.types.is_floating(col.type):
        finite = np.isfinite(col.to_numpy(zero_copy_only=False).astype(np.float64))
        if not finite.all():
            i = int(np.argmin(finite))
            raise InputError(f"{chunk.file.name}, {chunk.where(start + i)}: the id (--id-column {id_column!r}) is "
                             f"{col[i].as_py()}; a NaN or infinite id can never be matched, so every id must be a finite number")
    return col


def id_kind(t: pa.DataType) -> str | None:
    """'integer', 'float', 'string' or 'binary' for a usable id type; None for nested, null and other types."""
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary"
    if pa.types.is_temporal(t) or pa.types.is_decimal(t):
        return str(t)
    return None
