"""The bulk job's window loop and the server's batcher on a fake backend: no model, each test well under a second."""
from __future__ import annotations

import asyncio

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from engine.bulk import EmbedJob, Progress, run_embed_job
from engine.bulk.embedding import embedded_windows, unit_windows
from engine.bulk.jobrun import JobRun
from fakes import FakeBackend, expected_vector, fake_embedder, fake_tokenizer, sentence

rng = np.random.default_rng(1)


def corpus(path, n: int) -> list[str]:
    texts = [sentence(rng, int(k)) for k in rng.integers(1, 30, size=n)]
    path.write_text("".join(t + "\n" for t in texts))
    return texts


def expected(texts: list[str]) -> np.ndarray:
    tok = fake_tokenizer()
    return np.stack([expected_vector(tok.encode(t).ids[:32]) for t in texts])


def test_the_local_window_loop_writes_every_row_once_with_its_own_vector(tmp_path):
    texts = corpus(tmp_path / "in.txt", 700)
    job = EmbedJob(input=str(tmp_path / "in.txt"), output=str(tmp_path / "out"), rows_per_part=250, window_rows=64,
                   quiet=True)
    summary = run_embed_job(job, embedder=fake_embedder(max_batch_tokens=200))
    table = ds.dataset(tmp_path / "out", format="parquet").to_table().sort_by("id")
    assert table.column("id").to_pylist() == list(range(700)) and summary.parts == 3 and summary.rows == 700
    np.testing.assert_array_equal(np.stack(table.column("embedding").to_numpy(zero_copy_only=False)), expected(texts))
    assert summary.real_tokens == sum(len(fake_tokenizer().encode(t).ids) for t in texts)


def test_the_local_loop_resumes_after_a_backend_failure_and_redoes_only_the_unfinished_parts(tmp_path):
    texts = corpus(tmp_path / "in.txt", 600)
    texts[450] = "zebra " + texts[450]  # an unknown word: [UNK], which the first backend refuses
    (tmp_path / "in.txt").write_text("".join(t + "\n" for t in texts))
    job = EmbedJob(input=str(tmp_path / "in.txt"), output=str(tmp_path / "out"), rows_per_part=200, window_rows=50,
                   quiet=True)
    unk = fake_tokenizer().token_to_id("[UNK]")
    with pytest.raises(RuntimeError, match="refuses token"):
        run_embed_job(job, embedder=fake_embedder(FakeBackend(fail_on_token=unk)))
    backend = FakeBackend()
    summary = run_embed_job(job, embedder=fake_embedder(backend))
    assert summary.parts_resumed == 2 and summary.rows == 200  # parts 0 and 1 were committed before the failure
    assert sum(len(b.index) for b in backend.batches) == 200
    table = ds.dataset(tmp_path / "out", format="parquet").to_table().sort_by("id")
    assert table.column("id").to_pylist() == list(range(600))
    np.testing.assert_array_equal(np.stack(table.column("embedding").to_numpy(zero_copy_only=False)), expected(texts))


def test_a_unit_reads_only_its_own_rows_through_the_shared_window_step(tmp_path):
    texts = corpus(tmp_path / "in.txt", 300)
    job = EmbedJob(input=str(tmp_path / "in.txt"), output=str(tmp_path / "out"), rows_per_part=100, window_rows=30,
                   quiet=True)
    emb = fake_embedder()
    with JobRun(job, Progress("quiet"), emb.manifest) as run:
        run.scan("cpu")
        got = [(w.part, table) for w, table, _ in embedded_windows(unit_windows(run.plan, 1, run.file_rows), emb,
                                                                   run.plan, None)]
    assert {part for part, _ in got} == {1}
    rows = pa.concat_tables([t for _, t in got])
    assert rows.column("id").to_pylist() == list(range(100, 200))
    np.testing.assert_array_equal(np.stack(rows.column("embedding").to_numpy(zero_copy_only=False)),
                                  expected(texts[100:200]))


def test_the_server_batcher_answers_each_request_with_its_own_vectors():
    from engine.serve.batcher import Batcher
    from engine.serve.metrics import Metrics

    backend = FakeBackend()
    emb = fake_embedder(backend, max_batch_tokens=128)
    batcher = Batcher(emb, Metrics(), max_queued_tokens=100_000, max_wait_s=0.0, round_tokens=256)
    batcher.start()
    requests = [[sentence(rng, int(k)) for k in rng.integers(1, 25, size=int(n))] for n in rng.integers(1, 40, size=12)]

    async def main():
        return await asyncio.gather(*(batcher.embed(emb.sequences(texts)) for texts in requests))

    try:
        answers = asyncio.run(main())
    finally:
        batcher.stop()
    for texts, got in zip(requests, answers):
        np.testing.assert_array_equal(got, expected(texts))
    assert len(backend.batches) > 1 and sum(len(b.index) for b in backend.batches) == sum(map(len, requests))
