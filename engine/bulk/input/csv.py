"""The CSV reader: the text, id and kept columns read as bytes and decoded here, with a parse block that grows for huge
records."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pacsv

from ...errors import InputError
from .chunk import Chunk
from .columns import check_columns, decode_all, other_columns

CSV_BLOCK = 4 << 20  # bytes pyarrow parses at once; a record must fit in one block
CSV_MAX_BLOCK = 1 << 30


def read_csv(f, text_column, id_column, keep_columns, chunk_rows, query_column=None):
    """CSV: the text, id and kept columns are read as bytes and decoded here (never type-inferred: '007' stays '007').

    A record longer than the block pyarrow parses at once is retried with a 4x larger block, up to 1 GiB.
    """
    others = other_columns(id_column, keep_columns)
    block, done = CSV_BLOCK, 0  # rows already yielded, skipped when a retry reads the file again
    while True:
        try:
            for chunk in _csv_chunks(f, text_column, id_column, keep_columns, others, chunk_rows, block, done,
                                     query_column):
                yield chunk
                done += len(chunk.texts)
            return
        except pa.ArrowInvalid as err:
            if "straddling" in str(err) and block < CSV_MAX_BLOCK:
                block *= 4
                continue
            raise InputError(f"{f.name}, after record {done}: cannot parse this csv file ({err}); "
                             "check the quoting of the records that follow") from None


def _csv_chunks(f, text_column, id_column, keep_columns, others, chunk_rows, block, skip, query_column=None):
    parse = pacsv.ParseOptions(newlines_in_values=True)
    read = pacsv.ReadOptions(block_size=block)
    with pa.input_stream(str(f.path), compression="gzip" if f.compressed else None) as source:
        # First the header only: the column names, to report a missing one with the list.
        names = pacsv.open_csv(source, parse_options=parse, read_options=read,
                               convert_options=pacsv.ConvertOptions(column_types={text_column: pa.binary()})).schema.names
        check_columns(f, names, text_column, id_column, keep_columns, query_column=query_column)
    wanted = list(dict.fromkeys([text_column] + others + ([query_column] if query_column else [])))
    convert = pacsv.ConvertOptions(column_types={c: pa.binary() for c in wanted}, include_columns=wanted)
    with pa.input_stream(str(f.path), compression="gzip" if f.compressed else None) as source:
        reader = pacsv.open_csv(source, parse_options=parse, convert_options=convert, read_options=read)
        row = 0
        for batch in reader:
            if row + batch.num_rows <= skip:
                row += batch.num_rows
                continue
            first = max(0, skip - row)
            for start in range(first, batch.num_rows, chunk_rows):
                part = batch.slice(start, chunk_rows)
                file_row = row + start
                texts, bad = decode_all(part.column(text_column).to_pylist())
                columns, bad_fields = {}, {}
                for c in others:
                    columns[c] = _decode_field(f, part.column(c).to_pylist(), c, c == id_column, file_row, bad_fields)
                queries, bad_q = decode_all(part.column(query_column).to_pylist()) if query_column else (None, set())
                yield Chunk(file=f, file_row=file_row, texts=texts, columns=pa.table(columns) if columns else pa.table({}),
                            bad_utf8=bad, bad_fields=bad_fields, queries=queries, bad_query_utf8=bad_q)
            row += batch.num_rows


def _decode_field(f, raw: list, column: str, is_id: bool, file_row: int, bad_fields: dict[int, str]) -> pa.Array:
    """A CSV id or kept column as strings; invalid UTF-8 is a bad id (an error) or a bad field (the bad-row policy)."""
    values = []
    for i, v in enumerate(raw):
        try:
            values.append(None if v is None else v.decode("utf-8"))
        except UnicodeDecodeError:
            if is_id:
                raise InputError(f"{f.name}, record {file_row + i + 1}: the id (--id-column {column!r}) is not valid "
                                 "UTF-8; fix the file's encoding") from None
            bad_fields.setdefault(i, column)
            values.append(None)
    return pa.array(values, type=pa.string())
