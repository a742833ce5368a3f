"""Batching, prefetch and the writer thread with a fake session (a function that returns known vectors): no model."""
from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.bulk.ledger import Ledger
from engine.bulk.output import parts as parts_mod
from engine.bulk.output.parts import output_schema
from engine.bulk.output.sinks import ParquetSink
from engine.bulk.output.writer import WriterThread
from engine.runtime.batching import id_windows, padded_batches, plan_batches
from engine.runtime.prefetch import prefetch
from engine.runtime.heads import HEADS, collect
from engine.runtime.stages import BatchPlan, EncodeStats, run_stages

rng = np.random.default_rng(0)


def mixed_lengths(n: int) -> np.ndarray:
    """Token lengths shaped like real paragraphs: many short, a long tail, capped at 256."""
    return np.clip(rng.lognormal(mean=3.8, sigma=0.9, size=n).astype(np.int64), 1, 256)


def sequences(lengths) -> list[np.ndarray]:
    """Token ids whose first id is the sequence's index (so a vector can say which sequence it came from)."""
    return [np.concatenate([[i + 1000], rng.integers(5, 999, size=int(n) - 1)]).astype(np.int64) for i, n in enumerate(lengths)]


def fake_session(batch) -> np.ndarray:
    """(B, 3) float32: first token id, real length, sum of ids over the mask: the exact values a correct run maps back."""
    ids, mask = batch.input_ids, batch.attention_mask
    return np.stack([ids[:, 0], mask.sum(1), (ids * mask).sum(1)], axis=1).astype(np.float32)


@pytest.mark.parametrize("budget", [64, 1000, 4096, 32768])
@pytest.mark.parametrize("multiple", [1, 8])
def test_token_budget_never_exceeded(budget, multiple):
    lengths = mixed_lengths(3000)
    seqs = sequences(lengths)
    seen = 0
    for _, batch in padded_batches(id_windows(seqs, 1024), budget, None, 0, multiple):
        b, t = batch.input_ids.shape
        assert t % multiple == 0
        assert b * t <= budget or b == 1, (b, t, budget)  # only a single text longer than the budget may exceed it
        seen += b
    assert seen == len(seqs)


def test_padding_stays_under_five_percent_on_mixed_lengths():
    lengths = mixed_lengths(8192)
    real = padded = 0
    for _, batch in padded_batches(id_windows(sequences(lengths), 8192), 4096, None, 0, 1):
        real += batch.real_tokens
        padded += batch.input_ids.size
    assert real == lengths.sum()
    assert 1 - real / padded < 0.05


def test_plan_covers_every_row_once_with_a_row_cap():
    lengths = mixed_lengths(500)
    plans = plan_batches(lengths, 4096, max_batch_size=7)
    rows = np.concatenate(plans)
    assert sorted(rows.tolist()) == list(range(500)) and max(len(p) for p in plans) <= 7


def test_order_is_restored_across_windows_and_batches():
    lengths = mixed_lengths(2500)
    seqs = sequences(lengths)
    stats = EncodeStats()
    out = collect(run_stages(id_windows(seqs, 700), fake_session, BatchPlan(2048, None, 0), stats), len(seqs), HEADS["pooled"], (3,))
    expected = np.array([[s[0], len(s), s.sum()] for s in seqs], dtype=np.float32)
    np.testing.assert_array_equal(out, expected)
    assert stats.real_tokens == lengths.sum() and stats.batches > 10 and 0 <= stats.pad_overhead < 0.05


def test_batch_equals_single():
    seqs = sequences(mixed_lengths(300))
    plan = BatchPlan(4096, None, 0)
    together = collect(run_stages(id_windows(seqs, 300), fake_session, plan, EncodeStats()), 300, HEADS["pooled"], (3,))
    alone = np.concatenate([collect(run_stages(id_windows([s], 1), fake_session, plan, EncodeStats()), 1, HEADS["pooled"], (3,))
                            for s in seqs])
    np.testing.assert_array_equal(together, alone)


def test_an_error_in_the_prefetch_thread_reaches_the_caller():
    seqs = sequences(mixed_lengths(50))

    def windows():
        yield 0, seqs[:25], None
        raise RuntimeError("tokenizer exploded in window 2")

    got = []
    with pytest.raises(RuntimeError, match="tokenizer exploded in window 2"):
        for item in run_stages(windows(), fake_session, BatchPlan(512, None, 0), EncodeStats()):
            got.append(item)
    assert got, "batches of the first window still arrive before the error"


def test_a_session_error_stops_the_prefetch_thread():
    produced = []

    def items():
        for i in range(10_000):
            produced.append(i)
            yield i

    def failing(items):
        for i in prefetch(items, depth=2):
            if i == 3:
                raise ValueError("session failed")

    before = set(threading.enumerate())  # other tests' prefetch threads are not this one
    with pytest.raises(ValueError, match="session failed"):
        failing(items())
    ours = [t for t in threading.enumerate() if t.name == "engine-prefetch" and t not in before]
    assert len(ours) <= 1
    for t in ours:  # the thread notices the stop within one 0.1 s put timeout; allow a loaded machine 10 s
        t.join(timeout=10)
        assert not t.is_alive()
    assert len(produced) < 20  # the producer stopped instead of running ahead through all 10,000 items


def _schema() -> pa.Schema:
    return output_schema(pa.int64(), pa.schema([]), "float32", 3, {"test": True})


def _rows(start: int, n: int) -> pa.Table:
    emb = pa.FixedSizeListArray.from_arrays(pa.array(np.arange(n * 3, dtype=np.float32)), 3)
    return pa.Table.from_arrays([pa.array(np.arange(start, start + n)), emb], schema=_schema())


def test_writer_thread_flushes_parts_and_records_them(tmp_path):
    ledger = Ledger(tmp_path)
    writer = WriterThread(ParquetSink(tmp_path).open_part, lambda part, rec, name, size: ledger.append(rec | {"file": name, "bytes": size}))
    for part in range(3):
        for k in range(4):
            writer.put(("rows", part, _rows(part * 40 + k * 10, 10)))
        writer.put(("commit", part, {"kind": "part", "part": part}))
    writer.close()
    records = ledger.parts()
    ledger.close()
    assert sorted(records) == [0, 1, 2]
    for part, rec in records.items():
        table = pq.read_table(tmp_path / rec["file"])
        assert table.column("id").to_pylist() == list(range(part * 40, part * 40 + 40))
        assert rec["bytes"] == (tmp_path / rec["file"]).stat().st_size
    assert not list(tmp_path.glob(".*.tmp"))


def test_writer_thread_stops_on_error_and_leaves_no_part(tmp_path, monkeypatch):
    calls = []

    def failing_write(self, table):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        real_write(self, table)

    real_write = parts_mod.PartWriter.write
    monkeypatch.setattr(parts_mod.PartWriter, "write", failing_write)
    ledger = Ledger(tmp_path)
    writer = WriterThread(ParquetSink(tmp_path).open_part, lambda part, rec, name, size: ledger.append(rec | {"file": name, "bytes": size}))
    with pytest.raises(OSError, match="disk full"):
        for k in range(50):  # the error surfaces on a later put (or close), never a hang
            writer.put(("rows", 0, _rows(k * 10, 10)))
        writer.put(("commit", 0, {"kind": "part", "part": 0}))
        writer.close()
    writer._thread.join(timeout=5)
    assert not writer._thread.is_alive()
    assert ledger.parts() == {} and not list(tmp_path.glob("part-*")) and not list(tmp_path.glob(".*.tmp"))
    ledger.close()
