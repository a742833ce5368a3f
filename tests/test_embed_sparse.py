"""engine embed with a SPLADE model: a `sparse` column (struct<indices: list<int32>, values: list<float32>>) equal to
SparseEncoder.encode_sparse (document side), alone or next to the dense embedding (--sparse-model); exactly-once and
resumable; the refusals; the output read back by pyarrow, DuckDB and Polars (where installed)."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from embed_helpers import crash_before_part_record, embeddings, run, short_texts, write_corpus

from engine import Embedder, SparseEncoder

N = 21  # rows: 4 parts of 6 (the last short), windows of 4
SPARSE_TYPE = "struct<indices: list<element: int32>, values: list<element: float>>"


@pytest.fixture(scope="module")
def texts(real_texts) -> list[str]:
    return short_texts(real_texts[::13], N, chars=300)


def corpus(tmp_path, texts, fmt="jsonl"):
    ids = [f"doc-{(i * 5) % N:02d}" for i in range(N)]  # unique, not sorted
    return write_corpus(tmp_path / f"in.{fmt}", fmt, texts, ids, {"lang": ["en"] * N}), ids


def read_in_order(out) -> pa.Table:
    return ds.dataset(sorted(str(p) for p in out.glob("part-*.parquet")), format="parquet").to_table()


def sparse_rows(table: pa.Table) -> list[tuple[list[int], list[float]]]:
    return [(r["indices"], r["values"]) for r in table.column("sparse").to_pylist()]


def assert_rows_equal(got, want, atol=1e-5):
    assert len(got) == len(want)
    for (gi, gv), (wi, wv) in zip(got, want):
        assert list(gi) == wi.tolist() and gi == sorted(gi)
        assert np.allclose(np.asarray(gv, np.float32), wv, atol=atol)


ARGS = ["--id-column", "id", "--keep-columns", "lang", "--rows-per-part", 6, "--window-rows", 4, "--device", "cpu"]


@pytest.mark.parametrize("name", ["bert-max", "bert-inference-free"])
def test_sparse_model_writes_the_sparse_column(tiny_sparse_exports, texts, tmp_path, name):
    src, ids = corpus(tmp_path, texts, "parquet")
    out = tmp_path / "out"
    res = run([src, out, "--model", tiny_sparse_exports[name], *ARGS])
    assert res.exit_code == 0, res.output
    table = read_in_order(out)
    assert table.column_names == ["id", "lang", "sparse"] and table.column("id").to_pylist() == ids
    assert str(pq.read_schema(out / "part-00000.parquet").field("sparse").type) == SPARSE_TYPE
    want = SparseEncoder(tiny_sparse_exports[name], device="cpu").encode_sparse(texts)  # the document side
    assert_rows_equal(sparse_rows(table), want)
    assert all(len(i) > 0 for i, _ in sparse_rows(table))
    success = json.loads((out / "_SUCCESS").read_text())
    assert success["task"] == "sparse" and success["rows"]["written"] == N
    assert success["identity"]["task"] == "sparse" and success["identity"]["precision"] == "fp32"
    meta = json.loads(pq.read_schema(out / "part-00000.parquet").metadata[b"embedding_engine"])
    assert meta["task"] == "sparse" and meta["vocab_size"] == 400 and meta["side"] == "document"


def test_max_active_dims_and_a_model_folder(tiny_sparse_encoders, tiny_sparse_exports, texts, tmp_path, engine_cache):
    src, _ = corpus(tmp_path, texts)
    out = tmp_path / "out"
    res = run([src, out, "--model", tiny_sparse_exports["distilbert-max"], "--max-active-dims", 5, *ARGS, "-q"])
    assert res.exit_code == 0, res.output
    got = sparse_rows(read_in_order(out))
    want = SparseEncoder(tiny_sparse_exports["distilbert-max"], device="cpu").encode_sparse(texts, max_active_dims=5)
    assert_rows_equal(got, want) and max(len(i) for i, _ in got) == 5
    assert json.loads((out / "_SUCCESS").read_text())["identity"]["max_active_dims"] == 5
    # A SparseEncoder folder is exported on first use, as SparseEncoder(folder) exports it.
    out2 = tmp_path / "out2"
    res = run([src, out2, "--model", tiny_sparse_encoders["bert-sum"], "--precision", "fp32",
               "--cache-dir", engine_cache, *ARGS, "-q"])
    assert res.exit_code == 0, res.output
    want = SparseEncoder(tiny_sparse_encoders["bert-sum"], precision="fp32", cache_dir=str(engine_cache),
                         device="cpu").encode_sparse(texts)
    assert_rows_equal(sparse_rows(read_in_order(out2)), want)


def test_dense_and_sparse_in_one_job(minilm_export, tiny_sparse_exports, texts, tmp_path):
    src, ids = corpus(tmp_path, texts, "csv")
    out = tmp_path / "out"
    res = run([src, out, "--model", minilm_export, "--sparse-model", tiny_sparse_exports["bert-max"], *ARGS])
    assert res.exit_code == 0, res.output
    table = read_in_order(out)
    assert table.column_names == ["id", "lang", "embedding", "sparse"] and table.column("id").to_pylist() == ids
    dense = Embedder(minilm_export, device="cpu").encode(texts)
    assert np.abs(embeddings(table) - dense).max() <= 1e-5
    assert_rows_equal(sparse_rows(table), SparseEncoder(tiny_sparse_exports["bert-max"], device="cpu").encode_sparse(texts))
    identity = json.loads((out / "_SUCCESS").read_text())["identity"]
    assert identity["sparse_model"]["model_manifest_hash"] and identity["sparse_model"]["precision"] == "fp32"
    meta = json.loads(pq.read_schema(out / "part-00000.parquet").metadata[b"embedding_engine"])
    assert meta["dim"] == 384 and meta["sparse"]["vocab_size"] == 400
    # int8 embeddings with a sparse column: the calibration is the dense model's, the sparse column unchanged.
    out8 = tmp_path / "out8"
    res = run([src, out8, "--model", minilm_export, "--sparse-model", tiny_sparse_exports["bert-max"], "--dtype",
               "int8", *ARGS, "-q"])
    assert res.exit_code == 0, res.output
    table8 = read_in_order(out8)
    assert str(table8.schema.field("embedding").type) == "fixed_size_list<element: int8>[384]"
    assert sparse_rows(table8) == sparse_rows(table)


@pytest.mark.parametrize("hybrid", [False, True])
def test_resume_after_a_crash_is_exactly_once(minilm_export, tiny_sparse_exports, texts, tmp_path, monkeypatch, hybrid):
    src, ids = corpus(tmp_path, texts)
    out = tmp_path / "out"
    sparse = tiny_sparse_exports["bert-max"]
    model = ["--model", minilm_export, "--sparse-model", sparse] if hybrid else ["--model", sparse]
    args = [src, out, *model, *ARGS, "-q"]
    crash_before_part_record(monkeypatch, 2, args)  # part 2's file is in place, its ledger record never lands
    assert not (out / "_SUCCESS").exists()
    (out / ".part-00003.parquet.tmp").write_bytes(b"torn")
    refused = run([*args, "--max-active-dims", 3])  # the fingerprint covers the kept dimensions
    assert refused.exit_code == 1 and "max_active_dims" in refused.output, refused.output
    res = run(args)
    assert res.exit_code == 0, res.output
    table = read_in_order(out)
    assert table.column("id").to_pylist() == ids  # each id once, in input order
    assert_rows_equal(sparse_rows(table), SparseEncoder(sparse, device="cpu").encode_sparse(texts))
    assert not list(out.glob(".*.tmp"))
    again = run(args[:-1])
    assert again.exit_code == 0 and "already complete" in again.output


def test_refusals(minilm_export, tiny_sparse_exports, tiny_cross_encoders, tiny_models, texts, tmp_path):
    src, _ = corpus(tmp_path, texts)
    sparse = tiny_sparse_exports["bert-max"]
    for i, flags in enumerate((["--dtype", "int8"], ["--normalize"], ["--long-text", "chunk"], ["--pooling", "mean"])):
        res = run([src, tmp_path / f"d{i}", "--model", sparse, "--device", "cpu", *flags])
        assert res.exit_code == 2 and "task 'sparse'" in res.output and flags[0] in res.output, res.output
        assert "only apply to dense embeddings" in res.output and not (tmp_path / f"d{i}").exists()
    for i, flags in enumerate((["--ray"], ["--lancedb-table", "t"])):
        res = run([src, tmp_path / f"r{i}", "--model", sparse, "--device", "cpu", *flags])
        assert res.exit_code == 2 and "not supported with a sparse model" in res.output, res.output
        res = run([src, tmp_path / f"h{i}", "--model", minilm_export, "--sparse-model", sparse, *flags])
        assert res.exit_code == 2 and "not supported with a sparse model" in res.output, res.output
    res = run([src, tmp_path / "m", "--model", minilm_export, "--max-active-dims", 8])
    assert res.exit_code == 2 and "--sparse-model" in res.output, res.output
    res = run([src, tmp_path / "s", "--model", sparse, "--sparse-model", sparse])
    assert res.exit_code == 2 and "already a sparse encoder" in res.output, res.output
    # --sparse-model naming a dense model or a reranker (export folders and model folders): the model's task named.
    for i, (other, task) in enumerate(((minilm_export, "embed"), (tiny_models["bert"], "embed"),
                                       (tiny_cross_encoders["bert"], "rerank"))):
        res = run([src, tmp_path / f"t{i}", "--model", minilm_export, "--sparse-model", other, "--device", "cpu"])
        assert res.exit_code == 2 and "--sparse-model" in res.output and f"task '{task}'" in res.output, res.output
        assert "cannot encode sparse vectors" in res.output and not (tmp_path / f"t{i}").exists()


def test_readers_take_the_column_as_is(tiny_sparse_exports, texts, tmp_path):
    src, ids = corpus(tmp_path, texts)
    out = tmp_path / "out"
    assert run([src, out, "--model", tiny_sparse_exports["bert-max"], *ARGS, "-q"]).exit_code == 0
    want = {i: r for i, r in zip(ids, SparseEncoder(tiny_sparse_exports["bert-max"], device="cpu").encode_sparse(texts))}
    table = pq.read_table(out)  # the dataset folder, as pyarrow reads it
    got = dict(zip(table.column("id").to_pylist(), sparse_rows(table)))
    assert_rows_equal([got[i] for i in ids], [want[i] for i in ids])
    readers = 0
    try:
        import duckdb
    except ImportError:
        duckdb = None
    if duckdb is not None:
        rows = duckdb.sql(f"SELECT id, sparse.indices, sparse['values'] FROM read_parquet('{out}/part-*.parquet')").fetchall()
        got = {r[0]: (r[1], r[2]) for r in rows}
        assert_rows_equal([got[i] for i in ids], [want[i] for i in ids])
        readers += 1
    try:
        import polars as pl
    except ImportError:
        pl = None
    if pl is not None:
        frame = pl.read_parquet(f"{out}/part-*.parquet").unnest("sparse")
        got = {r["id"]: (r["indices"], r["values"]) for r in frame.iter_rows(named=True)}
        assert_rows_equal([got[i] for i in ids], [want[i] for i in ids])
        readers += 1
    print(f"read back by pyarrow and {readers} other reader(s)")
