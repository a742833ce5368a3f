"""The map_batches callable classes: one Embedder per actor, loaded once, batching with the runtime's token budget.

EmbedUnits (engine embed --ray) embeds whole output parts ("units") of an embed job and writes each to its own temp
file, which only the driver commits. EmbedBatches (embed_dataset) adds an `embedding` column to Ray Data batches.
"""
from __future__ import annotations

import dataclasses
import os
import socket
import time
import uuid
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from ..bulk.embedding import embedded_windows, unit_windows
from ..bulk.output.parts import PartWriter, convert, embedding_array, part_name
from ..bulk.partstats import STATS, PartStats
from ..config import EmbedderConfig
from ..errors import InputError
from ..runtime import Embedder
from .columns import check_columns

# One output row per window (progress; it also keeps Ray Data's no-progress guard quiet on long units) and one per unit.
RESULT_SCHEMA = pa.schema([("kind", pa.string()), ("part", pa.int64()), ("tmp", pa.string()), ("seconds", pa.float64()),
                           ("worker", pa.string())] + [(k, pa.int64()) for k in STATS])


def embedder_for(cfg: EmbedderConfig, cpus: float) -> Embedder:
    """The actor's Embedder; unless threads were given, as many threads as the CPUs the actor holds."""
    if cfg.threads is None:
        cfg = dataclasses.replace(cfg, threads=max(1, round(cpus)))
    return Embedder.from_config(cfg)


class EmbedUnits:
    """Embed units (whole parts of an embed job) into temp part files; the driver renames and records them."""

    def __init__(self, plan, rows_per_file: list[int], ranges: NDArray[np.float32] | None, cpus: float) -> None:
        self.plan, self.rows_per_file, self.ranges = plan, rows_per_file, ranges  # plan: the job's OutputPlan
        self.embedder = embedder_for(plan.job.embedder, cpus)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: pa.Table) -> Iterator[pa.Table]:
        for part in batch.column("part").to_pylist():
            yield from self._unit(part)

    def _row(self, kind: str, part: int, tmp: str | None, seconds: float, stats: PartStats) -> pa.Table:
        return pa.Table.from_pylist([{"kind": kind, "part": part, "tmp": tmp, "seconds": seconds, "worker": self.worker}
                                     | stats.to_dict()], schema=RESULT_SCHEMA)

    def _unit(self, part: int) -> Iterator[pa.Table]:
        """Read, validate (the bad-row policy), embed and write one part to a temp name unique to this attempt."""
        plan = self.plan
        tmp = f".{part_name(part)}.{uuid.uuid4().hex[:12]}.tmp"  # a retried unit never writes over a dead attempt's file
        started = time.perf_counter()
        total = PartStats()
        writer = None
        try:
            for _w, table, stats in embedded_windows(unit_windows(plan, part, self.rows_per_file), self.embedder, plan,
                                                     self.ranges):
                if table is not None:
                    writer = writer or PartWriter(plan.out, part, table.schema, tmp=tmp)
                    writer.write(table)
                total.add(stats)
                yield self._row("window", part, None, 0.0, stats)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        closed = writer.close() if writer is not None else None
        yield self._row("unit", part, closed, round(time.perf_counter() - started, 3), total)


class EmbedBatches:
    """Add an `embedding` column (the Arrow type engine embed writes) to each batch; bad texts by on_bad_row."""

    def __init__(self, cfg: EmbedderConfig, text_column: str, id_column: str | None, dtype: str, on_bad_row: str,
                 cpus: float) -> None:
        self.embedder = embedder_for(cfg, cpus)
        self.text_column, self.id_column, self.dtype, self.on_bad_row = text_column, id_column, dtype, on_bad_row
        self.dim = self.embedder.get_sentence_embedding_dimension()

    def __call__(self, batch: pa.Table) -> pa.Table:
        check_columns(batch.schema, self.text_column, self.id_column)
        texts = batch.column(self.text_column).to_pylist()
        good = [isinstance(t, str) and t != "" for t in texts]
        if not all(good):
            i = good.index(False)
            if self.on_bad_row == "error":
                where = f"id {batch.column(self.id_column)[i].as_py()!r}" if self.id_column else f"batch row {i}"
                raise InputError(f"{where}: the text ({self.text_column!r}) is {texts[i]!r}, not a non-empty string; "
                                 "pass on_bad_row='skip' to drop such rows or 'empty' to embed them as ''")
            if self.on_bad_row == "skip":
                batch = batch.filter(pa.array(good))
                texts = [t for t, g in zip(texts, good) if g]
            else:
                texts = [t if g else "" for t, g in zip(texts, good)]
        vectors = self.embedder.encode(texts) if texts else np.zeros((0, self.dim), np.float32)  # (N, D) float32
        return batch.append_column("embedding", embedding_array(convert(vectors, self.dtype, None), self.dtype, self.dim))
