"""Helpers shared by the engine embed tests: write a corpus in every input format, run the CLI, read the output."""
from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from click.testing import CliRunner

from engine.bulk import ledger as ledger_mod
from engine.cli import main


def short_texts(real_texts: list[str], n: int, chars: int = 160) -> list[str]:
    """n real paragraphs cut to at most `chars` characters (fast to embed)."""
    return [t[:chars] for t in real_texts[:n]]


def write_corpus(path: Path, fmt: str, texts: list, ids: list | None = None, extra: dict | None = None) -> Path:
    """texts (and optional ids / extra columns) as one file of the given format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = extra or {}
    cols = ({"id": ids} if ids is not None else {}) | {"text": texts} | extra
    rows = [dict(zip(cols, vals)) for vals in zip(*cols.values())]
    if fmt == "parquet":
        pq.write_table(pa.table(cols), path, row_group_size=max(1, len(texts) // 3 or 1))
    elif fmt in ("jsonl", "jsonl.gz"):
        data = "".join(json.dumps(r) + "\n" for r in rows).encode()
        path.write_bytes(gzip.compress(data, mtime=0) if fmt.endswith(".gz") else data)
    elif fmt == "csv":
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(cols))
            w.writeheader()
            w.writerows(rows)
    elif fmt == "txt":
        path.write_text("".join(t + "\n" for t in texts))
    else:
        raise ValueError(fmt)
    return path


def run(args: list[str], command: str = "embed"):
    """Invoke `engine embed ARGS` (or another command's) in-process; returns the click Result."""
    return CliRunner().invoke(main, [command, *[str(a) for a in args]], catch_exceptions=False)


def crash_before_part_record(monkeypatch, part: int, args: list, command: str = "embed") -> None:
    """Run `engine embed ARGS` (or `engine score ARGS`) and crash as part `part` is about to be recorded in the ledger: its rows are written,
    its record never lands (the riskiest moment for exactly-once)."""
    real_append = ledger_mod.Ledger.append

    def failing_append(self, record):
        if record.get("kind") == "part" and record["part"] == part:
            raise RuntimeError(f"simulated crash before part {part}'s ledger record")
        return real_append(self, record)

    with monkeypatch.context() as patch:
        patch.setattr(ledger_mod.Ledger, "append", failing_append)
        with pytest.raises(RuntimeError, match="simulated crash"):
            run(args, command)


def read_output(folder: Path) -> pa.Table:
    """The output dataset (pyarrow), sorted by id."""
    table = ds.dataset(folder, format="parquet").to_table()
    return table.sort_by("id")


def embeddings(table: pa.Table) -> np.ndarray:
    """(N, W) numpy array of the embedding column."""
    col = table.column("embedding").combine_chunks()
    width = col.type.list_size
    return col.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
