"""Stream an input corpus (parquet, jsonl[.gz], csv[.gz], txt[.gz]; a file, folder or glob) as row chunks.

Rows are numbered across the whole input in sorted-file order, so a row number is stable across runs and is the
default id. Readers never hold more than one chunk; every error names the file (and the row where there is one).
"""
from __future__ import annotations

import glob as globlib
import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputError, InputUsageError, MissingColumnError

BAD_ROW_POLICIES = ("error", "skip", "empty")
_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".txt": "txt"}
TXT_COLUMN = "text"  # the only column of a .txt input


@dataclass(frozen=True)
class InputFile:
    """One input file: where it is, how to read it, its size (part of the job fingerprint)."""

    path: Path
    format: str  # parquet | jsonl | csv | txt
    compressed: bool
    size: int

    @property
    def name(self) -> str:
        return str(self.path)


@dataclass
class Chunk:
    """Consecutive rows of one file: raw text values plus the id / kept columns as an Arrow table."""

    file: InputFile
    file_row: int  # index within the file of the chunk's first row (0-based)
    texts: list  # raw values: str, None, bytes, numbers...
    columns: pa.Table  # the id column (when named) and the kept columns, in that order
    bad_utf8: set[int] = field(default_factory=set)  # chunk positions whose bytes were not valid UTF-8
    bad_fields: dict[int, str] = field(default_factory=dict)  # chunk position -> kept column whose value was not UTF-8
    line_numbers: list[int] | None = None  # 1-based physical lines (txt / jsonl), for messages

    def where(self, i: int) -> str:
        """Human location of chunk row i inside its file."""
        if self.line_numbers is not None:
            return f"line {self.line_numbers[i]}"
        if self.file.format == "csv":
            return f"record {self.file_row + i + 1}"
        return f"row {self.file_row + i}"

    def slice(self, start: int, stop: int) -> "Chunk":
        """Chunk rows [start, stop), with their flags and line numbers."""
        return Chunk(file=self.file, file_row=self.file_row + start, texts=self.texts[start:stop],
                     columns=self.columns.slice(start, stop - start),
                     bad_utf8={i - start for i in self.bad_utf8 if start <= i < stop},
                     bad_fields={i - start: c for i, c in self.bad_fields.items() if start <= i < stop},
                     line_numbers=self.line_numbers[start:stop] if self.line_numbers is not None else None)


def format_of(path: Path) -> tuple[str, bool] | None:
    """(format, gzip-compressed) from the file name, or None for an unsupported name."""
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    if compressed:
        suffixes = suffixes[:-1]
    fmt = _SUFFIXES.get(suffixes[-1]) if suffixes else None
    if fmt is None or (compressed and fmt == "parquet"):
        return None
    return fmt, compressed


def list_inputs(spec: str) -> list[InputFile]:
    """The input files of a file, a folder (searched recursively) or a glob, sorted by path.

    Names starting with '.' or '_' are skipped inside folders (hidden files, _SUCCESS, Spark/Hive markers).
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        paths = sorted(p for p in path.rglob("*") if p.is_file() and format_of(p)
                       and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts))
        if not paths:
            raise InputError(f"{path} holds no .parquet, .jsonl, .jsonl.gz, .csv or .txt files")
    elif path.is_file():
        if format_of(path) is None:
            raise InputError(f"{path}: unsupported file type; use .parquet, .jsonl, .jsonl.gz, .ndjson, .csv or .txt (optionally .gz)")
        paths = [path]
    elif any(c in spec for c in "*?["):
        paths = sorted(Path(p) for p in globlib.glob(str(path), recursive=True) if Path(p).is_file() and format_of(Path(p)))
        if not paths:
            raise InputError(f"no supported input files match {spec!r}")
    else:
        raise InputUsageError(f"input {spec!r} does not exist")
    out = []
    for p in paths:
        fmt, compressed = format_of(p)
        out.append(InputFile(path=p, format=fmt, compressed=compressed, size=p.stat().st_size))
    return out


def read_file(f: InputFile, text_column: str, id_column: str | None, keep_columns: tuple[str, ...],
              chunk_rows: int, start_row: int = 0) -> Iterator[Chunk]:
    """Chunks of at most chunk_rows rows from one file, from row start_row on (parquet skips the row groups before it
    unread; the line formats read and drop the rows before it); corrupt or unreadable files raise InputError naming
    the file."""
    from .csv_input import read_csv  # these build on this module's Chunk and column checks
    from .jsonl_input import read_jsonl

    reader = {"parquet": _read_parquet, "jsonl": read_jsonl, "csv": read_csv, "txt": _read_txt}[f.format]
    args = (f, text_column, id_column, keep_columns, chunk_rows) + ((start_row,) if f.format == "parquet" else ())
    try:
        for chunk in reader(*args):
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
    values = [v if isinstance(v, str) and (i not in chunk.bad_utf8) and (v.isascii() or _encodable(v)) else None
              for i, v in enumerate(chunk.texts)]
    arr = pa.array(values, type=pa.string())
    cols = chunk.columns
    if cols.num_columns == 0:
        return pa.table({text_column: arr})
    if text_column in cols.column_names:
        return cols.set_column(cols.column_names.index(text_column), text_column, arr)
    return cols.append_column(text_column, arr)


def _encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _check_columns(f: InputFile, available, text_column: str, id_column: str | None,
                   keep_columns: tuple[str, ...], where: str = "") -> None:
    """Raise MissingColumnError listing the available columns when a named one is absent."""
    if text_column in available and (id_column is None or id_column in available) and all(c in available for c in keep_columns):
        return
    wanted = [("--text-column", text_column)] + ([("--id-column", id_column)] if id_column else []) \
        + [("--keep-columns", c) for c in keep_columns]
    for flag, name in wanted:
        if name not in available:
            raise MissingColumnError(f"{f.name}{where}: no column {name!r} ({flag}); available columns: "
                                     f"{', '.join(available) or '(none)'}"
                                     + ("; every JSON object needs the named fields (a null text is a bad row, "
                                        "which --on-bad-row handles)" if where else ""))


def _other_columns(id_column: str | None, keep_columns: tuple[str, ...]) -> list[str]:
    return ([id_column] if id_column else []) + [c for c in keep_columns if c != id_column]


def _read_parquet(f, text_column, id_column, keep_columns, chunk_rows, start_row=0):
    # pre_buffer (the default) keeps every pre-read range of the file until it is closed: memory would grow with the
    # file's size (measured: +30 MiB per 200k rows of paragraphs). Read without it.
    pf = pq.ParquetFile(f.path, pre_buffer=False)
    _check_columns(f, pf.schema_arrow.names, text_column, id_column, keep_columns)
    others = _other_columns(id_column, keep_columns)
    columns = list(dict.fromkeys([text_column] + others))
    row, first_group = 0, 0
    while first_group < pf.num_row_groups and row + pf.metadata.row_group(first_group).num_rows <= start_row:
        row += pf.metadata.row_group(first_group).num_rows  # wholly before start_row: never read
        first_group += 1
    groups = list(range(first_group, pf.num_row_groups))
    for batch in pf.iter_batches(batch_size=chunk_rows, row_groups=groups, columns=columns, use_threads=False):
        texts, bad = _text_values(batch.column(text_column))
        table = _decode_dictionaries(pa.Table.from_batches([batch]).select(others))
        yield Chunk(file=f, file_row=row, texts=texts, columns=table, bad_utf8=bad)
        row += batch.num_rows


def _decode_dictionaries(table: pa.Table) -> pa.Table:
    """Dictionary-encoded columns as plain arrays: one file may store a column dictionary-encoded and the next not."""
    for i, col in enumerate(table.columns):
        if pa.types.is_dictionary(col.type):
            table = table.set_column(i, table.field(i).name, col.cast(col.type.value_type))
    return table


def _text_values(col: pa.Array) -> tuple[list, set[int]]:
    """Python values of a text column; binary values are decoded here, flagging invalid UTF-8."""
    if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        return _decode_all(col.to_pylist())
    return col.to_pylist(), set()


def _decode_all(values: list) -> tuple[list, set[int]]:
    """Decode bytes values as UTF-8; undecodable ones become their replacement-character text and are flagged."""
    bad, out = set(), []
    for i, v in enumerate(values):
        if isinstance(v, bytes):
            v, invalid = _decode(v)
            if invalid:
                bad.add(i)
        out.append(v)
    return out, bad


def _decode(raw: bytes) -> tuple[str, bool]:
    """raw as UTF-8 text and whether it was invalid; invalid bytes become replacement characters, flagged by the caller."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), True


def _open_binary(f: InputFile):
    return gzip.open(f.path, "rb") if f.compressed else open(f.path, "rb")


def _read_txt(f, text_column, id_column, keep_columns, chunk_rows):
    _check_columns(f, [TXT_COLUMN], text_column, id_column, keep_columns)
    with _open_binary(f) as fh:
        texts, lines, bad, row, lineno = [], [], set(), 0, 0
        for raw in fh:
            lineno += 1
            raw = raw.rstrip(b"\n").removesuffix(b"\r")
            text, invalid = _decode(raw)
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
