"""The parquet reader: row groups before the start row are skipped unread; columns are read as stored."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from .chunk import Chunk
from .columns import check_columns, decode_dictionaries, other_columns, text_values


def read_parquet(f, text_column, id_column, keep_columns, chunk_rows, start_row=0, query_column=None):
    # pre_buffer (the default) keeps every pre-read range of the file until it is closed: memory would grow with the
    # file's size (measured: +30 MiB per 200k rows of paragraphs). Read without it.
    pf = pq.ParquetFile(f.path, pre_buffer=False)
    check_columns(f, pf.schema_arrow.names, text_column, id_column, keep_columns, query_column=query_column)
    others = other_columns(id_column, keep_columns)
    columns = list(dict.fromkeys([text_column] + others + ([query_column] if query_column else [])))
    row, first_group = 0, 0
    while first_group < pf.num_row_groups and row + pf.metadata.row_group(first_group).num_rows <= start_row:
        row += pf.metadata.row_group(first_group).num_rows  # wholly before start_row: never read
        first_group += 1
    groups = list(range(first_group, pf.num_row_groups))
    for batch in pf.iter_batches(batch_size=chunk_rows, row_groups=groups, columns=columns, use_threads=False):
        texts, bad = text_values(batch.column(text_column))
        table = decode_dictionaries(pa.Table.from_batches([batch]).select(others))
        queries, bad_q = text_values(batch.column(query_column)) if query_column else (None, set())
        yield Chunk(file=f, file_row=row, texts=texts, columns=table, bad_utf8=bad, queries=queries, bad_query_utf8=bad_q)
        row += batch.num_rows
