"""Chunk: consecutive rows of one input file, as every reader yields them."""
from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from .files import InputFile


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
    queries: list | None = None  # engine score: the raw values of the query column, like texts (None: no pairs)
    bad_query_utf8: set[int] = field(default_factory=set)  # chunk positions whose query bytes were not valid UTF-8

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
                     line_numbers=self.line_numbers[start:stop] if self.line_numbers is not None else None,
                     queries=self.queries[start:stop] if self.queries is not None else None,
                     bad_query_utf8={i - start for i in self.bad_query_utf8 if start <= i < stop})
