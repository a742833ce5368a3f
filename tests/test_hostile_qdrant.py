"""engine embed --qdrant-collection on hostile ground: a second writer (a running engine embed, a program holding the
folder) refused at once; a collection changed after _SUCCESS never complete-looking; a collection engine embed did not
write, or one deleted or replaced since, never deleted nor written; options that do not apply refused.
"""
from __future__ import annotations

import sys
import time
import uuid

from embed_helpers import crash_before_part_record, run, write_corpus
from qdrant_client import QdrantClient, models
from qdrant_helpers import (N, STATE, _client, _copy, _opts, _points, _recorded_rows, _stored_points, _success,
                            check_collection, corpus, expected, finished, pieces)
from test_embed_resume import _kill_when

from engine.bulk.output.qdrant_points import POINT_NAMESPACE

__all__ = ["corpus", "expected", "finished"]  # the shared fixtures


def test_a_second_engine_embed_is_refused_while_one_runs(real_texts, minilm_export, tmp_path):
    src = write_corpus(tmp_path / "big.jsonl", "jsonl", pieces(real_texts, 2000))  # long enough to outlast the check
    db = tmp_path / "db"
    args = [src, db, "--qdrant-collection", "docs", "--model", minilm_export, "--threads", 1]
    second = []

    def refused_while_running() -> bool:
        if not (db / STATE / "_ledger.jsonl").is_file():
            return False
        started = time.monotonic()
        second.append((run(args), time.monotonic() - started))
        return True

    assert _kill_when([sys.executable, "-m", "engine", "embed", *map(str, args), "--quiet"], refused_while_running)
    ((result, seconds),) = second
    assert result.exit_code == 1 and "is open in another Qdrant client" in result.output, result.output
    assert seconds < 10, "refused at once, not after waiting"


def test_a_second_writer_is_refused_clearly(finished, corpus, minilm_export, tmp_path):
    db = _copy(finished, tmp_path)
    with _client(db):  # a notebook holding the folder open
        started = time.monotonic()
        r = run([corpus[0], db, *_opts(minilm_export)])
        assert r.exit_code == 1 and "is open in another Qdrant client" in r.output and "Qdrant server" in r.output
        assert time.monotonic() - started < 10, "refused at once, not after waiting"
    r = run([corpus[0], db, *_opts(minilm_export)])
    assert r.exit_code == 0 and "already complete" in r.output, r.output


def test_a_collection_changed_after_success_is_never_complete_looking(finished, corpus, expected, minilm_export,
                                                                      tmp_path):
    db = _copy(finished, tmp_path)
    with _client(db) as client:
        client.delete("docs", points_selector=models.PointIdsList(points=[str(uuid.uuid5(POINT_NAMESPACE, "p0003"))]))
    r = run([corpus[0], db, *_opts(minilm_export)])
    assert r.exit_code == 1 and f"{N} points ({N - 1} found)" in r.output and "--overwrite" in r.output, r.output
    assert _success(db) is None
    r = run([corpus[0], db, *_opts(minilm_export, "--overwrite")])
    assert r.exit_code == 0, r.output
    check_collection(db, corpus, expected)


def test_overwrite_never_deletes_a_collection_engine_embed_did_not_write(finished, corpus, minilm_export, tmp_path):
    db = _copy(finished, tmp_path)
    model = minilm_export

    def theirs(client: QdrantClient) -> None:
        client.create_collection("docs", vectors_config={"dense": models.VectorParams(size=384, distance="Cosine")})
        client.upsert("docs", points=[models.PointStruct(id=1, vector={"dense": [1.0] * 384}, payload={"mine": 1})])

    with _client(db) as client:  # ours deleted, theirs made under the same name
        client.delete_collection("docs")
        theirs(client)
    r = run([corpus[0], db, *_opts(model, "--overwrite")])
    assert r.exit_code == 1 and "not the collection engine embed wrote" in r.output, r.output
    assert [p.payload for p in _points(db)] == [{"mine": 1}]
    # a collection with no ledger beside it: left alone, with or without --overwrite
    fresh = tmp_path / "fresh"
    with _client(fresh) as client:
        theirs(client)
    for extra in ([], ["--overwrite"]):
        r = run([corpus[0], fresh, *_opts(model, *extra)])
        assert r.exit_code == 1 and "was not written by engine embed" in r.output, r.output
    assert [p.payload for p in _points(fresh)] == [{"mine": 1}]


def test_resume_refuses_a_collection_deleted_or_replaced_since(corpus, minilm_export, tmp_path, monkeypatch):
    """An unfinished job (part 1's ledger record never landed): its collection deleted is refused up front, not after
    embedding the rest; one put in its place is never written, with or without --overwrite."""
    src, db = corpus[0], tmp_path / "db"
    crash_before_part_record(monkeypatch, 1, [src, db, *_opts(minilm_export)])
    assert _recorded_rows(db) == 20 and _stored_points(db) == 40 and _success(db) is None
    with _client(db) as client:
        client.delete_collection("docs")
    r = run([src, db, *_opts(minilm_export)])
    assert r.exit_code == 1 and "was deleted since this job wrote 20 points" in r.output, r.output
    with _client(db) as client:
        assert not client.collection_exists("docs")
        client.create_collection("docs", vectors_config={"dense": models.VectorParams(size=384, distance="Cosine")},
                                 metadata={"engine_embed_job": "someone else's"})
    for extra in ([], ["--overwrite"]):
        r = run([src, db, *_opts(minilm_export, *extra)])
        assert r.exit_code == 1 and "not the collection engine embed wrote" in r.output, (extra, r.output)
    assert _points(db) == []
    with _client(db) as client:
        client.delete_collection("docs")
    r = run([src, db, *_opts(minilm_export, "--overwrite")])
    assert r.exit_code == 0 and len(_points(db)) == N, r.output


def test_refusals(corpus, minilm_export, tmp_path):
    src = corpus[0]
    db = tmp_path / "db"
    for extra, message in [
        (["--index"], "a Qdrant collection is indexed by Qdrant itself"),
        (["--ray"], "--qdrant-collection cannot go with --ray"),
        (["--dtype", "int8"], "stores float32 vectors, not --dtype int8"),
        (["--allow-duplicate-ids"], "points are upserted by id"),
        (["--lancedb-table", "docs"], "pass one of them"),
    ]:
        r = run([src, db, "--qdrant-collection", "docs", "--model", minilm_export, *extra])
        assert r.exit_code == 2 and message in r.output, (extra, r.output)
    r = run([src, db, "--qdrant-collection", "no/slash", "--model", minilm_export])
    assert r.exit_code == 2 and "a collection name holds only" in r.output, r.output
    assert not db.exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    r = run([src, other, "--qdrant-collection", "docs", "--model", minilm_export])
    assert r.exit_code == 1 and "notes.txt but no Qdrant storage (meta.json)" in r.output, r.output
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


# --- the sparse slot: rows carrying a sparse column, written through the sink itself -----------------------
