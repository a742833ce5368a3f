"""engine embed --lancedb-table: the parquet output's schema and vectors in a LanceDB table, upserted by id, so a run
killed with kill -9 (or crashing between an upsert and its ledger record) and resumed leaves every id exactly once;
--index sized to the row count; _SUCCESS only when the table is complete; refusals.

The tiny random BERT export (hidden 32) keeps these cheap: the sink does not care which model made the vectors.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import lancedb
import numpy as np
import pytest
from embed_helpers import crash_before_part_record, embeddings, read_output, run, write_corpus
from test_embed_resume import _kill_when

from engine.bulk.output.lance_index import index_plan
from engine.bulk.output.lance_owner import MARK_KEY

N = 300
STATE = ".docs.engine-embed"  # the hidden folder beside the table: its ledger and _SUCCESS


def pieces(real_texts: list[str], n: int, chars: int = 80) -> list[str]:
    """n distinct pieces of real text, `chars` characters or fewer each."""
    out = list(dict.fromkeys(t[i:i + chars].strip() for t in real_texts for i in range(0, len(t), chars)))
    out = [t for t in out if t]
    assert len(out) >= n
    return out[:n]


@pytest.fixture(scope="module")
def model(tiny_exports) -> str:
    return str(tiny_exports["bert"])


@pytest.fixture(scope="module")
def corpus(real_texts, tmp_path_factory):
    """300 real short texts with string ids and a kept column."""
    root = tmp_path_factory.mktemp("lance")
    ids = [f"p{i:04d}" for i in range(N)]
    src = write_corpus(root / "in.jsonl", "jsonl", pieces(real_texts, N), ids=ids,
                       extra={"topic": [f"t{i % 7}" for i in range(N)]})
    return root, src, ids


def _opts(model: str) -> list:
    return ["--model", model, "--id-column", "id", "--keep-columns", "topic", "--rows-per-part", 50,
            "--window-rows", 25, "--threads", 1]


@pytest.fixture(scope="module")
def reference(corpus, model):
    """The parquet output of the same job."""
    root, src, _ = corpus
    r = run([src, root / "parquet", *_opts(model)])
    assert r.exit_code == 0, r.output
    return read_output(root / "parquet")


def _success(db: Path) -> dict | None:
    path = db / STATE / "_SUCCESS"
    return json.loads(path.read_text()) if path.is_file() else None


def check_table(db: Path, reference, ids: list) -> None:
    """Every id once, the parquet output's schema (metadata included, plus the job's mark) and vectors, and _SUCCESS
    saying so."""
    table = lancedb.connect(db).open_table("docs").to_arrow().sort_by("id")
    got = table.column("id").to_pylist()
    assert len(got) == len(set(got)) == len(ids) and got == sorted(ids)
    meta = dict(table.schema.metadata)
    assert meta.pop(MARK_KEY)  # the job's mark (what proves the table is the job's), beside the parquet metadata
    assert table.schema == reference.schema and meta == reference.schema.metadata
    assert table.column("topic").to_pylist() == reference.column("topic").to_pylist()
    np.testing.assert_array_equal(embeddings(table), embeddings(reference))
    success = _success(db)
    assert success["rows"]["written"] == len(ids) and success["table"] == "docs"


def _recorded_rows(db: Path) -> int:
    try:
        lines = (db / STATE / "_ledger.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    return sum(json.loads(line)["rows"] for line in lines if '"kind": "part"' in line)


def _table_rows(db: Path) -> int:
    try:
        return lancedb.connect(db).open_table("docs").count_rows()
    except ValueError:  # not created yet
        return 0


def test_kill_9_then_resume_leaves_every_id_once(corpus, reference, model, tmp_path):
    _, src, ids = corpus
    db = tmp_path / "db"
    cmd = [sys.executable, "-m", "engine", "embed", str(src), str(db), "--lancedb-table", "docs", "--quiet",
           *map(str, _opts(model))]
    # once two parts are recorded; then at the risky moment: rows upserted for a part the ledger does not list yet
    killed = [_kill_when(cmd, lambda: _recorded_rows(db) >= 100)]
    recorded = _recorded_rows(db)
    killed.append(_kill_when(cmd, lambda: _table_rows(db) > _recorded_rows(db) > recorded))
    beyond = _table_rows(db) - _recorded_rows(db)
    assert killed == [True, True] and recorded >= 100 and beyond > 0, (killed, recorded, beyond)
    assert _success(db) is None  # never complete-looking after a kill
    r = run([src, db, "--lancedb-table", "docs", *_opts(model)])
    assert r.exit_code == 0, r.output
    assert "resumed from an earlier run" in r.output
    check_table(db, reference, ids)
    # asked for later, --index reopens the finished table: 300 rows are too few, and the summary says so
    r = run([src, db, "--lancedb-table", "docs", "--index", *_opts(model)])
    assert r.exit_code == 0 and "index: none: 300 rows are fewer than 5,000" in r.output, r.output
    assert not list(lancedb.connect(db).open_table("docs").list_indices())
    assert _success(db)["index"]["index_type"] is None
    r = run([src, db, "--lancedb-table", "docs", "--index", *_opts(model)])
    assert r.exit_code == 0 and "already complete" in r.output, r.output


def test_crash_between_upsert_and_ledger_record(corpus, reference, model, tmp_path, monkeypatch):
    """Part 2's rows are in the table but its ledger record never lands: the rerun upserts them again, not twice."""
    _, src, ids = corpus
    db = tmp_path / "db"
    crash_before_part_record(monkeypatch, 2, [src, db, "--lancedb-table", "docs", *_opts(model)])
    assert _table_rows(db) == 150 and _recorded_rows(db) == 100 and _success(db) is None
    r = run([src, db, "--lancedb-table", "docs", *_opts(model)])
    assert r.exit_code == 0, r.output
    check_table(db, reference, ids)


def test_a_table_changed_after_success_is_never_complete_looking(corpus, model, tmp_path):
    _, src, _ = corpus
    db = tmp_path / "db"
    assert run([src, db, "--lancedb-table", "docs", *_opts(model)]).exit_code == 0
    lancedb.connect(db).open_table("docs").delete("id < 'p0010'")
    r = run([src, db, "--lancedb-table", "docs", *_opts(model)])
    assert r.exit_code == 1 and "300 rows (290 found)" in r.output and "--overwrite" in r.output, r.output
    assert _success(db) is None
    r = run([src, db, "--lancedb-table", "docs", "--overwrite", "--dtype", "float16", *_opts(model)])
    assert r.exit_code == 0, r.output
    table = lancedb.connect(db).open_table("docs")
    assert table.count_rows() == N and str(table.schema.field("embedding").type.value_type) == "halffloat"


def test_index_type_and_size_follow_the_row_count():
    assert index_plan(4_999, 384) is None
    hnsw = {"index_type": "IVF_HNSW_SQ", "distance_type": "cosine", "num_partitions": 1}
    assert index_plan(5_000, 384) == index_plan(999_999, 384) == hnsw
    assert index_plan(1_000_000, 384) == {"index_type": "IVF_PQ", "distance_type": "cosine", "num_partitions": 1000,
                                          "num_sub_vectors": 24}
    assert index_plan(4_000_000, 1000)["num_sub_vectors"] == 125  # 16 does not divide 1000: sub-vectors of 8
    assert index_plan(2_500_000, 100) == hnsw | {"num_partitions": 3}  # 8 does not divide 100: no PQ


def test_index_built_at_the_end_and_searchable(real_texts, model, tmp_path):
    n = 5_200
    src = write_corpus(tmp_path / "in.txt", "txt", pieces(real_texts, n, chars=60))
    db = tmp_path / "db"
    r = run([src, db, "--lancedb-table", "docs", "--index", "--model", model, "--threads", 1])
    assert r.exit_code == 0, r.output
    assert "index: IVF_HNSW_SQ (1 partition, cosine) over 5,200 rows" in r.output
    table = lancedb.connect(db).open_table("docs")
    (index,) = table.list_indices()
    assert index.columns == ["embedding"] and table.index_stats(index.name).num_indexed_rows == n
    assert table.schema.field("id").type == "int64"  # row numbers, as in the parquet output
    assert _success(db)["index"] == {"index_type": "IVF_HNSW_SQ", "distance_type": "cosine", "num_partitions": 1}
    stats = table.index_stats(index.name)
    assert (stats.index_type, stats.distance_type, stats.num_indexed_rows, stats.num_unindexed_rows) == \
        ("IVF_HNSW_SQ", "cosine", n, 0)
    query = table.search(embeddings(table.to_arrow())[7], vector_column_name="embedding").distance_type("cosine")
    assert "ANN" in query.explain_plan() and query.limit(10).to_arrow().num_rows == 10  # answered through the index
    # (the tiny random model's vectors are nearly parallel, so they cannot measure recall; benchmarks/lance_index.py
    # measures it on all-MiniLM-L6-v2 vectors of a real retrieval task)


def test_refusals(corpus, model, tmp_path):
    _, src, _ = corpus
    db = tmp_path / "db"
    for extra, message in [
        (["--index"], "--index builds a LanceDB vector index; add --lancedb-table NAME"),
        (["--lancedb-table", "docs", "--allow-duplicate-ids"], "rows are upserted by id"),
        (["--lancedb-table", "docs", "--index", "--dtype", "int8"], "--index needs --dtype float32 or float16"),
        (["--lancedb-table", "no/slash"], "a LanceDB table name holds only"),
        (["--lancedb-table", "docs", "--ray"], "--lancedb-table cannot go with --ray"),
    ]:
        r = run([src, db, "--model", model, *extra])
        assert r.exit_code == 2 and message in r.output, (extra, r.output)
    # a table engine embed did not write is left alone, with or without --overwrite
    lancedb.connect(db).create_table("theirs", data=[{"id": 1, "x": 2.0}])
    for extra in ([], ["--overwrite"]):
        r = run([src, db, "--lancedb-table", "theirs", "--model", model, *extra])
        assert r.exit_code == 1 and "was not written by engine embed" in r.output, r.output
    assert lancedb.connect(db).open_table("theirs").count_rows() == 1
