"""Readers alone (no model): bounded memory on big files, stable row numbering, format detection."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from engine.bulk.input import format_of, list_inputs, read_file


def test_parquet_reader_memory_does_not_grow_with_the_file(tmp_path, real_texts):
    """Arrow memory while streaming a 60-row-group file stays near one chunk (pre_buffer would keep it all)."""
    path = tmp_path / "big.parquet"
    texts = [real_texts[i % len(real_texts)] for i in range(4000)]
    with pq.ParquetWriter(path, pa.schema([("text", pa.string())])) as w:
        for _ in range(60):
            w.write_table(pa.table({"text": texts}))
    size = sum(len(t) for t in texts) * 60
    (f,) = list_inputs(str(path))
    peak, rows = 0, 0
    for chunk in read_file(f, "text", None, (), 1000):
        rows += len(chunk.texts)
        peak = max(peak, pa.total_allocated_bytes())
        del chunk
    assert rows == 240_000
    assert peak < size / 10, (peak, size)


def test_format_detection_and_sorted_listing(tmp_path):
    from pathlib import Path

    assert format_of(Path("a.jsonl.gz")) == ("jsonl", True)
    assert format_of(Path("a.PARQUET")) == ("parquet", False)
    assert format_of(Path("a.parquet.gz")) is None and format_of(Path("a.json")) is None
    for name in ("b/z.txt", "a.csv", "b/a.jsonl", "_skip/x.txt", ".hidden.txt", "notes.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x\n")
    assert [f.path.relative_to(tmp_path).as_posix() for f in list_inputs(str(tmp_path))] == ["a.csv", "b/a.jsonl", "b/z.txt"]
