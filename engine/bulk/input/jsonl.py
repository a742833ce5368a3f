"""The JSON Lines reader: one object per line, every line's fields checked."""
from __future__ import annotations

import json

import pyarrow as pa

from ...errors import InputError
from .chunk import Chunk
from .columns import check_columns, encodable, open_binary, other_columns


def read_jsonl(f, text_column, id_column, keep_columns, chunk_rows, query_column=None):
    """JSON Lines: one object per line; blank lines are ignored; a line that is not a JSON object is a corrupt file."""
    others = other_columns(id_column, keep_columns)
    with open_binary(f) as fh:
        texts, values, lines, bad, bad_fields, row, lineno = [], {c: [] for c in others}, [], set(), {}, 0, 0
        queries, bad_q = ([] if query_column else None), set()
        for raw in fh:
            lineno += 1
            if not raw.strip():
                continue
            try:
                line, invalid = raw.decode("utf-8"), False
            except UnicodeDecodeError:  # judged per field below: only the text and the kept fields matter
                line, invalid = raw.decode("utf-8", "surrogateescape"), True
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(f"{f.name}, line {lineno}: not valid JSON ({err.msg} at column {err.colno}); "
                                 "the file is corrupt or not JSON Lines") from None
            if not isinstance(obj, dict):
                raise InputError(f"{f.name}, line {lineno}: a JSON {type(obj).__name__}, not an object; "
                                 "JSON Lines input needs one object per line")
            check_columns(f, obj, text_column, id_column, keep_columns, f", line {lineno}",
                          query_column=query_column)  # every line, as the first
            text = _text_field(obj[text_column], invalid, bad, len(texts))
            if queries is not None:
                queries.append(_text_field(obj[query_column], invalid, bad_q, len(texts)))
            for c in others:
                v = obj[c]
                if isinstance(v, str) and not encodable(v):
                    if c == id_column:
                        raise InputError(f"{f.name}, line {lineno}: the id (--id-column {c!r}) is not valid UTF-8 "
                                         "(or holds a lone surrogate); fix the file's encoding")
                    bad_fields.setdefault(len(texts), c)
                    v = None
                values[c].append(v)
            texts.append(text)
            lines.append(lineno)
            if len(texts) == chunk_rows:
                yield json_chunk(f, row, texts, values, others, bad, lines, bad_fields, queries, bad_q)
                row += len(texts)
                texts, values, lines, bad, bad_fields = [], {c: [] for c in others}, [], set(), {}
                queries, bad_q = ([] if query_column else None), set()
        if texts:
            yield json_chunk(f, row, texts, values, others, bad, lines, bad_fields, queries, bad_q)


def _text_field(value, invalid: bool, bad: set[int], i: int):
    """A text (or query) field as read; a line's invalid UTF-8 inside it flags position i (the value is never used)."""
    if invalid and isinstance(value, str) and not encodable(value):
        bad.add(i)
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


def json_chunk(f, row, texts, values, others, bad, lines, bad_fields, queries=None, bad_q=frozenset()) -> Chunk:
    arrays = {}
    for c in others:
        try:
            arrays[c] = pa.array(values[c])
        except (pa.ArrowException, OverflowError) as err:
            raise InputError(f"{f.name}, lines {lines[0]}-{lines[-1]}: column {c!r} mixes types that one parquet "
                             f"column cannot hold ({err})") from None
    return Chunk(file=f, file_row=row, texts=texts, columns=pa.table(arrays) if arrays else pa.table({}),
                 bad_utf8=bad, bad_fields=bad_fields, line_numbers=lines, queries=queries, bad_query_utf8=set(bad_q))
