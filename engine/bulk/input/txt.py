"""The plain-text reader: one text per line (a trailing CR is dropped); the only column is 'text'."""
from __future__ import annotations

import pyarrow as pa

from .chunk import Chunk
from .columns import check_columns, decode, open_binary

TXT_COLUMN = "text"  # the only column of a .txt input


def read_txt(f, text_column, id_column, keep_columns, chunk_rows, query_column=None):
    check_columns(f, [TXT_COLUMN], text_column, id_column, keep_columns, query_column=query_column)
    with open_binary(f) as fh:
        texts, lines, bad, row, lineno = [], [], set(), 0, 0
        for raw in fh:
            lineno += 1
            raw = raw.rstrip(b"\n").removesuffix(b"\r")
            text, invalid = decode(raw)
            if invalid:
                bad.add(len(texts))
            texts.append(text)
            lines.append(lineno)
            if len(texts) == chunk_rows:
                yield Chunk(file=f, file_row=row, texts=texts, columns=pa.table({}), bad_utf8=bad, line_numbers=lines)
                row += len(texts)
                texts, lines, bad = [], [], set()
        if texts:
            yield Chunk(file=f, file_row=row, texts=texts, columns=pa.table({}), bad_utf8=bad, line_numbers=lines)
