"""Issue 23, `engine embed --lancedb-table` and the LanceDB adapter on hostile input: a table put in place under the
job's name is never dropped or written, a finished table whose ids were changed is never complete-looking, a table of
another schema is refused with the difference, and a query of None is named.

The tiny random BERT export keeps these cheap: the sink does not care which model made the vectors.
"""
from __future__ import annotations

import json
from pathlib import Path

import lancedb
import pyarrow as pa
import pytest
from embed_helpers import crash_before_part_record, run, write_corpus

N = 90
STATE = ".docs.engine-embed"


@pytest.fixture(scope="module")
def model(tiny_exports) -> str:
    return str(tiny_exports["bert"])


@pytest.fixture(scope="module")
def src(real_texts, tmp_path_factory) -> Path:
    """90 short real texts with string ids and a kept column."""
    texts = [t[:60] for t in real_texts[:N]]
    return write_corpus(tmp_path_factory.mktemp("hostile-lance") / "in.jsonl", "jsonl", texts,
                        ids=[f"p{i:04d}" for i in range(N)], extra={"topic": [f"t{i % 3}" for i in range(N)]})


def _args(src: Path, db: Path, model: str, *extra) -> list:
    return [src, db, "--lancedb-table", "docs", "--model", model, "--id-column", "id", "--keep-columns", "topic",
            "--rows-per-part", 30, "--window-rows", 15, "--threads", 1, *extra]


def _unfinished(src: Path, db: Path, model: str, monkeypatch) -> None:
    """A job stopped before part 1's ledger record: part 0 recorded, rows in the table, no _SUCCESS."""
    crash_before_part_record(monkeypatch, 1, _args(src, db, model))
    assert (db / STATE / "_ledger.jsonl").is_file() and not (db / STATE / "_SUCCESS").exists()


def _their_table(db: Path, rows: int = 5, **kwargs):
    """A table of the user's own under the job's name, with the job's schema but no mark of the job."""
    schema = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("topic", pa.string()),
                        pa.field("embedding", pa.list_(pa.float32(), 32), nullable=False)])
    data = pa.table({"id": [f"p{i:04d}" for i in range(rows)], "topic": ["mine"] * rows,
                     "embedding": [[float(i)] * 32 for i in range(rows)]}, schema=schema)
    return lancedb.connect(db).create_table("docs", data=data, **kwargs)


def _rows(db: Path) -> list[dict]:
    return sorted(lancedb.connect(db).open_table("docs").to_arrow().select(["id", "topic"]).to_pylist(),
                  key=lambda r: r["id"])


def test_overwrite_never_drops_a_table_made_after_ours_was_dropped(src, model, tmp_path):
    """(DL1)"""
    db = tmp_path / "db"
    assert run(_args(src, db, model)).exit_code == 0
    lancedb.connect(db).drop_table("docs")
    _their_table(db)
    before = _rows(db)
    r = run(_args(src, db, model, "--overwrite"))
    assert r.exit_code == 1 and "not the table engine embed wrote" in r.output and "--lancedb-table" in r.output, r.output
    assert _rows(db) == before
    # once theirs is moved away, --overwrite starts over, and replaces its own table again
    lancedb.connect(db).drop_table("docs")
    for _ in range(2):
        r = run(_args(src, db, model, "--overwrite"))
        assert r.exit_code == 0, r.output
    assert lancedb.connect(db).open_table("docs").count_rows() == N


def test_resume_into_a_table_put_in_place_is_refused_before_any_write(src, model, tmp_path, monkeypatch):
    """(DL2)"""
    db = tmp_path / "db"
    _unfinished(src, db, model, monkeypatch)
    lancedb.connect(db).drop_table("docs")
    _their_table(db)
    before = _rows(db)
    r = run(_args(src, db, model))
    assert r.exit_code == 1 and "not the table engine embed wrote" in r.output, r.output
    assert _rows(db) == before and len(before) == 5
    # the same when the earlier run died before its scan was recorded (an empty ledger beside the table)
    db2 = tmp_path / "db2"
    _their_table(db2)
    (db2 / STATE).mkdir()
    (db2 / STATE / "_ledger.jsonl").write_bytes(b"")
    r = run(_args(src, db2, model))
    assert r.exit_code == 1 and "not the table engine embed wrote" in r.output, r.output
    assert _rows(db2) == before


def test_resume_after_our_table_was_dropped_is_refused(src, model, tmp_path, monkeypatch):
    """(DL2) rows the ledger lists as written are gone: refused up front, not after embedding the rest."""
    db = tmp_path / "db"
    _unfinished(src, db, model, monkeypatch)
    lancedb.connect(db).drop_table("docs")
    r = run(_args(src, db, model))
    assert r.exit_code == 1 and "was dropped" in r.output and "--overwrite" in r.output, r.output
    assert "docs" not in lancedb.connect(db).list_tables().tables
    assert run(_args(src, db, model, "--overwrite")).exit_code == 0


def test_resume_onto_another_schema_names_the_difference(src, model, tmp_path, monkeypatch):
    """(CR7)"""
    db = tmp_path / "db"
    _unfinished(src, db, model, monkeypatch)
    lancedb.connect(db).create_table("docs", data=[{"id": 1, "x": 2.0}], mode="overwrite")
    r = run(_args(src, db, model))
    assert r.exit_code == 1, r.output
    for part in ("missing: topic, embedding", "extra: x (double)", "different type: id (table int64, job string)", "--lancedb-table"):
        assert part in r.output, (part, r.output)
    assert lancedb.connect(db).open_table("docs").count_rows() == 1
    # our own table with a column dropped since: refused with the difference too, and --overwrite rebuilds it
    db2 = tmp_path / "db2"
    _unfinished(src, db2, model, monkeypatch)
    lancedb.connect(db2).open_table("docs").drop_columns(["topic"])
    r = run(_args(src, db2, model))
    assert r.exit_code == 1 and "missing: topic" in r.output and "--overwrite" in r.output, r.output
    assert run(_args(src, db2, model, "--overwrite")).exit_code == 0
    assert lancedb.connect(db2).open_table("docs").count_rows() == N


def test_ids_changed_in_a_finished_table_are_never_complete(src, model, tmp_path):
    """(SW4)"""
    db = tmp_path / "db"
    assert run(_args(src, db, model)).exit_code == 0
    lancedb.connect(db).open_table("docs").update(where="id = 'p0003'", values={"id": "zzzz"})
    for _ in range(2):  # and not on the run after either
        r = run(_args(src, db, model))
        assert r.exit_code == 1 and "ids" in r.output and "--overwrite" in r.output, r.output
        assert "already complete" not in r.output and not (db / STATE / "_SUCCESS").exists()
    assert run(_args(src, db, model, "--overwrite")).exit_code == 0
    assert "p0003" in lancedb.connect(db).open_table("docs").to_arrow().column("id").to_pylist()
    assert json.loads((db / STATE / "_SUCCESS").read_text())["ids"]["rows"] == N
    r = run(_args(src, db, model))
    assert r.exit_code == 0 and "already complete" in r.output, r.output


def test_lancedb_adapter_query_of_none_names_the_argument(model):
    """(UE6)"""
    from lancedb.embeddings import get_registry

    import engine.integrations.lancedb  # noqa: F401  (registers "embedding-engine")

    func = get_registry().get("embedding-engine").create(model=model)
    for bad, what in [(None, "NoneType"), (5, "int"), (["ok", None], "query[1]")]:
        with pytest.raises(TypeError, match=r"compute_query_embeddings\(query\)") as err:
            func.compute_query_embeddings(bad)
        assert what in str(err.value), err.value
    with pytest.raises(TypeError, match="texts"):
        func.generate_embeddings(None)
    assert len(func.compute_query_embeddings("a question")[0]) == 32


def test_ids_changed_before_the_first_finish_are_caught(src, model, tmp_path, monkeypatch):
    """(SW4) the finished parts' ids, recorded as each part is committed, are what the first finish checks."""
    db = tmp_path / "db"
    _unfinished(src, db, model, monkeypatch)
    lancedb.connect(db).open_table("docs").update(where="id = 'p0003'", values={"id": "zzzz"})
    r = run(_args(src, db, model))
    assert r.exit_code == 1 and "ids" in r.output and "--overwrite" in r.output, r.output
    assert not (db / STATE / "_SUCCESS").exists()


def test_a_finished_table_may_gain_columns_but_not_lose_them(src, model, tmp_path):
    """(CR7) a column of the user's added to a finished table is theirs; a dropped one makes it incomplete."""
    db = tmp_path / "db"
    assert run(_args(src, db, model)).exit_code == 0
    table = lancedb.connect(db).open_table("docs")
    table.add_columns({"label": "'mine'"})
    r = run(_args(src, db, model))
    assert r.exit_code == 0 and "already complete" in r.output, r.output
    table.drop_columns(["topic"])
    r = run(_args(src, db, model))
    assert r.exit_code == 1 and "missing: topic" in r.output and "--overwrite" in r.output, r.output
