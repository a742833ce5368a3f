"""The columns embed_dataset reads, checked against a dataset's schema (a batch's, or the dataset's when known)."""
from __future__ import annotations

from ..errors import MissingColumnError


def check_columns(schema, text_column: str, id_column: str | None) -> None:
    """MissingColumnError naming the column and the dataset's columns, when the schema is known without running
    anything (a lazy transform's is not: its actors check each batch)."""
    names = list(schema.names) if schema is not None else None
    for what, column in (("text_column", text_column), ("id_column", id_column)):
        if names is not None and column is not None and column not in names:
            raise MissingColumnError(f"{what} {column!r} is not a column of the dataset; its columns are "
                                     f"{', '.join(map(repr, names)) or 'none'}: pass {what}= one of them")
