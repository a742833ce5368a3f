"""Where an embed job's rows go: a parquet dataset folder (the default), a LanceDB table (lance.py) or a Qdrant
collection (qdrant.py).

Every sink has a state folder holding the ledger and _SUCCESS (the output folder itself, or a hidden folder beside a
LanceDB table or Qdrant collection). It claims its output before a run (refusing what engine embed did not write), checks on a resume that
the output is still the one the job wrote, opens one part at a time for the writer thread, says what a finished output
lacks (missing or changed parts), finishes the output before _SUCCESS is written, and is closed when the run ends
(the Qdrant sink releases its folder's lock).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from ..input import InputFile
from ..job import EmbedJob
from ..ledger import SUCCESS, Ledger
from .folder import exclude_output, prepare_folder
from .parts import PartWriter, schema_ranges


class Sink(Protocol):
    """What the runners ask of an output (ParquetSink, lance.LanceSink, qdrant.QdrantSink)."""

    state: Path  # the folder of the ledger and _SUCCESS
    label: str  # how the summary and errors name the output

    def claim(self, spec: str, files: list[InputFile], overwrite: bool) -> list[InputFile]: ...

    def check_resume(self, ledger: Ledger, schema: pa.Schema | None) -> None: ...  # before any write: refuse an output
    # that is no longer the one this job wrote (schema: the job's part schema; None before its scan)

    def open_part(self, index: int, schema: pa.Schema): ...  # write(table), commit() -> (file or None, bytes), abort()

    def damaged(self, ledger: Ledger) -> list[str]: ...

    def finish(self, plan, ledger: Ledger, ranges: NDArray[np.float32] | None, progress) -> dict: ...

    def close(self) -> None: ...  # the run is over (or refused): release what the sink holds open


@dataclass(frozen=True)
class ParquetSink:
    """A folder of part-NNNNN.parquet files, each written to a temp name and renamed into place."""

    state: Path

    @property
    def label(self) -> str:
        return str(self.state)

    def claim(self, spec: str, files: list[InputFile], overwrite: bool) -> list[InputFile]:
        """The input files outside the folder; refuse a folder engine embed did not write (empty ours on overwrite)."""
        files = exclude_output(spec, files, self.state)
        prepare_folder(self.state, files, overwrite)
        return files

    def check_resume(self, ledger: Ledger, schema: pa.Schema | None) -> None:
        """Nothing to check: damaged() finds changed part files, and claim() refused a folder engine embed did not write."""

    def open_part(self, index: int, schema: pa.Schema) -> PartWriter:
        return PartWriter(self.state, index, schema)

    def damaged(self, ledger: Ledger) -> list[str]:
        """The part files the ledger and _SUCCESS list that are missing or changed (none: the output is complete)."""
        out = self.state
        damaged = sorted(rec["file"] for rec in ledger.parts().values()
                         if rec["file"] and not ((out / rec["file"]).is_file()
                                                 and (out / rec["file"]).stat().st_size == rec["bytes"]))
        try:
            listed = json.loads((out / SUCCESS).read_text()).get("files", [])
        except (OSError, ValueError, AttributeError):
            listed = []
        return damaged + [name for name in listed if not (out / name).is_file() and name not in damaged]

    def finish(self, plan, ledger: Ledger, ranges: NDArray[np.float32] | None, progress) -> dict:
        """{'files': [...]} for _SUCCESS; when no rows were written, one empty part so readers still see the schema."""
        files = sorted(p["file"] for p in ledger.parts().values() if p["file"])
        if not files:
            name, _ = PartWriter(self.state, 0, plan.part_schema(schema_ranges(plan, ranges))).commit()
            files = [name]
        return {"files": files}

    def close(self) -> None:
        """Nothing held open."""


def open_sink(job: EmbedJob):
    """The sink job.output names: a LanceDB table with --lancedb-table, a Qdrant collection with
    --qdrant-collection, else a parquet dataset folder."""
    if job.qdrant_collection is not None:
        from .qdrant import QdrantSink  # qdrant_client is imported only by this sink, on first use

        return QdrantSink(job)
    if job.lancedb_table is not None:
        from .lance import LanceSink  # lancedb is imported only for this sink

        return LanceSink(job)
    return ParquetSink(Path(job.output))
