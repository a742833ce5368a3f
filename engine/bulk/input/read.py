"""read_file: one input file as row chunks, through the reader of its format, from a start row on; a corrupt or
unreadable file is an InputError naming it."""
from __future__ import annotations

import zlib
from collections.abc import Iterator

import pyarrow as pa

from ...errors import InputError
from .chunk import Chunk
from .columns import encodable
from .csv import read_csv
from .files import InputFile
from .jsonl import read_jsonl
from .parquet import read_parquet
from .txt import read_txt


def read_file(f: InputFile, text_column: str, id_column: str | None, keep_columns: tuple[str, ...],
              chunk_rows: int, start_row: int = 0, query_column: str | None = None) -> Iterator[Chunk]:
    """Chunks of at most chunk_rows rows from one file, from row start_row on (parquet skips the row groups before it
    unread; the line formats read and drop the rows before it); corrupt or unreadable files raise InputError naming
    the file. query_column (engine score): its values are read as the chunks' queries, checked like the texts."""
    reader = {"parquet": read_parquet, "jsonl": read_jsonl, "csv": read_csv, "txt": read_txt}[f.format]
    args = (f, text_column, id_column, keep_columns, chunk_rows) + ((start_row,) if f.format == "parquet" else ())
    try:
        for chunk in reader(*args, **({"query_column": query_column} if query_column is not None else {})):
            n = len(chunk.texts)
            if chunk.file_row + n <= start_row:
                continue
            if chunk.file_row < start_row:
                chunk = chunk.slice(start_row - chunk.file_row, n)
            if text_column in keep_columns:
                chunk.columns = _with_text(chunk, text_column)
            yield chunk
    except (InputError, GeneratorExit):
        raise
    except (OSError, EOFError, zlib.error, pa.ArrowException, ValueError) as err:
        raise InputError(f"{f.name}: cannot read this {f.format} file ({type(err).__name__}: {err})") from err


def _with_text(chunk: Chunk, text_column: str) -> pa.Table:
    """The kept text column as strings: the text as read, null where it is not a valid string."""
    values = [v if isinstance(v, str) and (i not in chunk.bad_utf8) and (v.isascii() or encodable(v)) else None
              for i, v in enumerate(chunk.texts)]
    arr = pa.array(values, type=pa.string())
    cols = chunk.columns
    if cols.num_columns == 0:
        return pa.table({text_column: arr})
    if text_column in cols.column_names:
        return cols.set_column(cols.column_names.index(text_column), text_column, arr)
    return cols.append_column(text_column, arr)
