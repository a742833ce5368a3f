"""What every reader shares: the named-column checks, and decoding text values (invalid UTF-8 is flagged, never
guessed at)."""
from __future__ import annotations

import gzip

import pyarrow as pa

from ...errors import MissingColumnError
from .files import InputFile


def check_columns(f: InputFile, available, text_column: str, id_column: str | None,
                  keep_columns: tuple[str, ...], where: str = "", query_column: str | None = None) -> None:
    """Raise MissingColumnError listing the available columns when a named one is absent."""
    if text_column in available and (id_column is None or id_column in available) and \
            (query_column is None or query_column in available) and all(c in available for c in keep_columns):
        return
    wanted = ([("--query-column", query_column)] if query_column else []) + [("--text-column", text_column)] \
        + ([("--id-column", id_column)] if id_column else []) + [("--keep-columns", c) for c in keep_columns]
    for flag, name in wanted:
        if name not in available:
            raise MissingColumnError(f"{f.name}{where}: no column {name!r} ({flag}); available columns: "
                                     f"{', '.join(available) or '(none)'}"
                                     + ("; every JSON object needs the named fields (a null text is a bad row, "
                                        "which --on-bad-row handles)" if where else ""))


def other_columns(id_column: str | None, keep_columns: tuple[str, ...]) -> list[str]:
    return ([id_column] if id_column else []) + [c for c in keep_columns if c != id_column]


def encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def text_values(col: pa.Array) -> tuple[list, set[int]]:
    """Python values of a text column; binary values are decoded here, flagging invalid UTF-8."""
    if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        return decode_all(col.to_pylist())
    return col.to_pylist(), set()


def decode_all(values: list) -> tuple[list, set[int]]:
    """Decode bytes values as UTF-8; undecodable ones become their replacement-character text and are flagged."""
    bad, out = set(), []
    for i, v in enumerate(values):
        if isinstance(v, bytes):
            v, invalid = decode(v)
            if invalid:
                bad.add(i)
        out.append(v)
    return out, bad


def decode(raw: bytes) -> tuple[str, bool]:
    """raw as UTF-8 text and whether it was invalid; invalid bytes become replacement characters, flagged by the caller."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), True


def decode_dictionaries(table: pa.Table) -> pa.Table:
    """Dictionary-encoded columns as plain arrays: one file may store a column dictionary-encoded and the next not."""
    for i, col in enumerate(table.columns):
        if pa.types.is_dictionary(col.type):
            table = table.set_column(i, table.field(i).name, col.cast(col.type.value_type))
    return table


def open_binary(f: InputFile):
    return gzip.open(f.path, "rb") if f.compressed else open(f.path, "rb")
