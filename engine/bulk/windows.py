"""Windows: validated rows grouped per output part, at most about window_rows texts each, in input order."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from .input import InputFile
from .job import EmbedJob
from .rows import Piece, apply_policy
from .scan import read_chunks


@dataclass
class Window:
    """Validated rows of one part handed to the Embedder (or Reranker) at once; the last window of a part closes it."""

    part: int
    texts: list[str]
    queries: list[str] | None  # task "rerank": each text's query
    ids: pa.Array | None
    keep: pa.Table | None
    rows_in: int
    skipped: int
    emptied: int
    closes_part: bool


def windows(job: EmbedJob, files: list[InputFile], done: set[int], keep_schema: pa.Schema, id_type: pa.DataType,
            rows: range | None = None, rows_per_file: list[int] | None = None) -> Iterator[Window]:
    """Read every row in order (or only rows, a range of whole parts, given each file's row count), drop those of
    finished parts, yield windows; the last window of a part closes it."""
    R, W = job.rows_per_part, job.window_rows
    buf: list[Piece] = []
    current: int | None = None

    def flush(closes: bool) -> Window:
        texts = [t for p in buf for t in p.texts]
        ids = pa.concat_arrays([p.ids.cast(id_type) for p in buf]) if buf else None
        keep = pa.concat_tables([p.keep.cast(keep_schema) for p in buf]) if buf and keep_schema.names else None
        queries = [q for p in buf for q in p.queries] if job.pair_columns else None
        w = Window(part=current, texts=texts, queries=queries, ids=ids, keep=keep, rows_in=sum(p.rows_in for p in buf),
                   skipped=sum(p.skipped for p in buf), emptied=sum(p.emptied for p in buf), closes_part=closes)
        buf.clear()
        return w

    for row, chunk in read_chunks(job, files, rows, rows_per_file):
        n, pos = len(chunk.texts), 0
        while pos < n:
            part = (row + pos) // R
            end = min(n, (part + 1) * R - row)
            if part != current:
                if current is not None and current not in done:
                    yield flush(True)
                current = part
            if part not in done:
                buf.append(apply_policy(chunk, pos, end, job.on_bad_row, row, job.id_column, job.keep_columns,
                                        job.pair_columns))
                if sum(len(p.texts) for p in buf) >= W:
                    yield flush(False)
            pos = end
    if current is not None and current not in done:
        yield flush(True)
