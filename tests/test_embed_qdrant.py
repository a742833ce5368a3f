"""engine embed --qdrant-collection: the job's vectors, ids and kept columns as points of a Qdrant local-mode
collection, upserted by id, so a run killed with kill -9 and resumed leaves every id exactly once; _SUCCESS only when
the collection was checked complete; ownership and lock refusals; searched through the real qdrant-client. The sparse
slot (a sparse_embedding column -> the named sparse vector 'sparse') is tested on the sink itself, with TF-IDF vectors
built from the export's real tokenizer (no sparse model needed).

all-MiniLM-L6-v2 (the session's export) on 120 short real texts; the stored vectors are compared with Embedder's.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest
from embed_helpers import crash_before_part_record, run, write_corpus
from qdrant_client import QdrantClient, models
from test_embed_resume import _kill_when

from engine.bulk.job import EmbedJob
from engine.bulk.ledger import Ledger
from engine.bulk.output.qdrant import QdrantSink
from engine.bulk.output.qdrant_points import POINT_NAMESPACE, SPARSE_COLUMN, SPARSE_TYPE

N = 120
STATE = ".docs.engine-embed-qdrant"  # the hidden folder inside OUTPUT: the ledger and _SUCCESS


def pieces(real_texts: list[str], n: int, chars: int = 80) -> list[str]:
    """n distinct pieces of real text, `chars` characters or fewer each."""
    out = [t for t in dict.fromkeys(t[i:i + chars].strip() for t in real_texts for i in range(0, len(t), chars)) if t]
    assert len(out) >= n
    return out[:n]


@pytest.fixture(scope="module")
def corpus(real_texts, tmp_path_factory):
    """120 real short texts with string ids and a kept column."""
    root = tmp_path_factory.mktemp("qdrant")
    texts, ids = pieces(real_texts, N), [f"p{i:04d}" for i in range(N)]
    src = write_corpus(root / "in.jsonl", "jsonl", texts, ids=ids, extra={"topic": [f"t{i % 7}" for i in range(N)]})
    return src, texts, ids


@pytest.fixture(scope="module")
def expected(corpus, embedder) -> np.ndarray:
    """Embedder's vectors of the texts, unit length (as Qdrant stores cosine vectors)."""
    emb = embedder.encode(corpus[1])
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def _opts(model, *extra) -> list:
    return ["--qdrant-collection", "docs", "--model", model, "--id-column", "id", "--keep-columns", "topic,text",
            "--rows-per-part", 20, "--window-rows", 10, "--threads", 1, *extra]


@pytest.fixture(scope="module")
def finished(corpus, minilm_export, tmp_path_factory) -> Path:
    """A Qdrant folder the job finished (tests copy it before changing it)."""
    db = tmp_path_factory.mktemp("qdrant-done") / "db"
    r = run([corpus[0], db, *_opts(minilm_export)])
    assert r.exit_code == 0, r.output
    return db


def _copy(db: Path, tmp_path: Path) -> Path:
    shutil.copytree(db, tmp_path / "db")
    return tmp_path / "db"


def _success(db: Path) -> dict | None:
    path = db / STATE / "_SUCCESS"
    return json.loads(path.read_text()) if path.is_file() else None


def _points(db: Path, name: str = "docs") -> list:
    with _client(db) as client:
        return client.scroll(name, limit=10_000, with_payload=True, with_vectors=True)[0]


class _client:
    """QdrantClient(path=db), closed (its lock released) on leaving the block."""

    def __init__(self, db: Path) -> None:
        self.client = QdrantClient(path=str(db))

    def __enter__(self) -> QdrantClient:
        return self.client

    def __exit__(self, *exc) -> None:
        self.client.close()


def check_collection(db: Path, corpus, expected: np.ndarray) -> None:
    """Every id once, under its UUIDv5, with Embedder's vector and its payload; _SUCCESS saying so."""
    _, texts, ids = corpus
    points = _points(db)
    got = sorted(p.payload["id"] for p in points)
    assert len(points) == len(set(got)) == N and got == sorted(ids)
    by_id = {p.payload["id"]: p for p in points}
    for i, pid in enumerate(ids):
        point = by_id[pid]
        assert point.id == str(uuid.uuid5(POINT_NAMESPACE, pid))
        assert point.payload == {"id": pid, "topic": f"t{i % 7}", "text": texts[i]}
        np.testing.assert_allclose(point.vector["dense"], expected[i], atol=2e-5)
    success = _success(db)
    assert success["rows"]["written"] == N and success["collection"] == "docs"
    assert success["vectors"] == {"dense": {"dense": {"size": 384, "distance": "Cosine"}}, "sparse": []}


def test_rows_land_once_with_the_embedders_vectors_and_search_finds_the_text(finished, corpus, expected, embedder,
                                                                             minilm_export):
    check_collection(finished, corpus, expected)
    _, texts, ids = corpus
    with _client(finished) as client:
        info = client.get_collection("docs")
        assert info.config.params.vectors["dense"].distance == models.Distance.COSINE
        meta = info.config.metadata
        assert meta["engine_embed_job"] and meta["embedding_engine"]["model"]  # the job's mark, the parts' metadata
        for k in (3, 57, 111):
            hits = client.query_points("docs", query=embedder.encode(texts[k]).tolist(), using="dense", limit=3).points
            assert hits[0].payload["id"] == ids[k] and hits[0].score > 0.999, (k, hits)
    r = run([corpus[0], finished, *_opts(minilm_export)])
    assert r.exit_code == 0 and "already complete" in r.output, r.output


def test_integer_ids_are_point_ids(corpus, minilm_export, tmp_path):
    src, texts, _ = corpus
    db = tmp_path / "db"
    r = run([src, db, "--qdrant-collection", "rows", "--model", minilm_export, "--threads", 1])  # row numbers
    assert r.exit_code == 0, r.output
    points = _points(db, "rows")
    assert sorted(p.id for p in points) == list(range(N)) and all(p.payload == {"id": p.id} for p in points)
    numbered = write_corpus(tmp_path / "ints.jsonl", "jsonl", texts[:10], ids=[7 * i + 3 for i in range(10)])
    r = run([numbered, db, "--qdrant-collection", "ints", "--id-column", "id", "--model", minilm_export, "--threads", 1])
    assert r.exit_code == 0, r.output
    assert sorted(p.id for p in _points(db, "ints")) == [7 * i + 3 for i in range(10)]
    negative = write_corpus(tmp_path / "neg.jsonl", "jsonl", texts[:3], ids=[1, -5, 2])
    r = run([negative, db, "--qdrant-collection", "neg", "--id-column", "id", "--model", minilm_export])
    assert r.exit_code == 1 and "id -5 (--id-column 'id') is negative" in r.output and "UUID" in r.output, r.output
    assert (db / ".neg.engine-embed-qdrant" / "_ledger.jsonl").is_file()
    assert not (db / ".neg.engine-embed-qdrant" / "_SUCCESS").exists()


def _recorded_rows(db: Path) -> int:
    try:
        lines = (db / STATE / "_ledger.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    return sum(json.loads(line)["rows"] for line in lines if '"kind": "part"' in line)


def _stored_points(db: Path) -> int:
    """The points in the collection's storage, read from its sqlite file (the writer holds the folder's lock, so no
    client can open it meanwhile)."""
    path = db / "collection" / "docs" / "storage.sqlite"
    if not path.is_file():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.05) as conn:
            return conn.execute("SELECT count(*) FROM points").fetchone()[0]
    except sqlite3.OperationalError:  # locked mid-write, or the table not made yet
        return 0


def test_kill_9_then_resume_leaves_every_id_once(corpus, expected, minilm_export, tmp_path):
    src = corpus[0]
    db = tmp_path / "db"
    cmd = [sys.executable, "-m", "engine", "embed", str(src), str(db), "--quiet", *map(str, _opts(minilm_export))]
    # once two parts are recorded; then at the risky moment: points upserted for a part the ledger does not list yet
    killed = [_kill_when(cmd, lambda: _recorded_rows(db) >= 40)]
    recorded = _recorded_rows(db)
    killed.append(_kill_when(cmd, lambda: _stored_points(db) > _recorded_rows(db) > recorded))
    beyond = _stored_points(db) - _recorded_rows(db)
    assert killed == [True, True] and recorded >= 40 and beyond > 0, (killed, recorded, beyond)
    assert _success(db) is None  # never complete-looking after a kill
    r = run([src, db, *_opts(minilm_export)])
    assert r.exit_code == 0, r.output
    assert "resumed from an earlier run" in r.output
    check_collection(db, corpus, expected)


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


# --- the sparse slot: rows carrying a sparse_embedding column, written through the sink itself -----------------------

def tfidf(texts: list[str], tokenizer) -> list[dict]:
    """{'indices': int32 token ids (sorted), 'values': float32 tf-idf, unit length} of each text."""
    counts = [Counter(tokenizer.encode(t, add_special_tokens=False).ids) for t in texts]
    df = Counter(token for c in counts for token in c)
    out = []
    for c in counts:
        indices = sorted(c)
        values = np.array([c[i] * np.log(len(texts) / df[i]) + 1e-3 for i in indices], np.float32)
        out.append({"indices": indices, "values": (values / np.linalg.norm(values)).tolist()})
    return out


def test_sparse_rows_become_the_named_sparse_vector_and_hybrid_search_finds_them(corpus, expected, minilm_export,
                                                                                 embedder, tmp_path):
    from tokenizers import Tokenizer

    src, texts, ids = corpus
    tokenizer = Tokenizer.from_file(str(Path(minilm_export) / "tokenizer.json"))
    sparse = tfidf(texts, tokenizer)
    schema = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("text", pa.string()),
                        pa.field("embedding", pa.list_(pa.float32(), 384), nullable=False),
                        pa.field(SPARSE_COLUMN, SPARSE_TYPE)])
    rows = pa.table({"id": ids, "text": texts, "embedding": list(embedder.encode(texts)), SPARSE_COLUMN: sparse},
                    schema=schema)
    db = tmp_path / "db"
    sink = QdrantSink(EmbedJob(input=str(src), output=str(db), qdrant_collection="hybrid", id_column="id",
                               keep_columns=("text",)))
    sink.claim(str(src), [], overwrite=False)
    sink.state.mkdir()
    ledger = Ledger(sink.state)
    ledger.append({"kind": "job", "fingerprint": "sparse slot", "created_at": time.time()})
    plan = SimpleNamespace(part_schema=lambda _ranges: schema, job=SimpleNamespace(dtype="float32"))
    for attempt in range(2):  # the part redone (after a crash): upserted again, not added twice
        part = sink.open_part(0, schema)
        part.write(rows.slice(0, 70))
        part.write(rows.slice(70))
        _, _, extra = part.commit()
    ledger.append({"kind": "part", "part": 0, "rows": N, **extra})
    info = sink.finish(plan, ledger, None, None)
    sink.close()
    ledger.close()
    assert info["vectors"]["sparse"] == ["sparse"] and "dense (384, cosine)" in info["notes"][0]
    with _client(db) as client:
        config = client.get_collection("hybrid").config.params
        assert config.sparse_vectors["sparse"].modifier is None and config.vectors["dense"].size == 384
        points = {p.payload["id"]: p for p in client.scroll("hybrid", limit=1000, with_vectors=True)[0]}
        assert len(points) == N
        for i in (0, 42, 119):
            stored = points[ids[i]].vector["sparse"]
            assert stored.indices == sparse[i]["indices"]
            np.testing.assert_allclose(stored.values, sparse[i]["values"], rtol=1e-6)
            np.testing.assert_allclose(points[ids[i]].vector["dense"], expected[i], atol=2e-5)
        k = 57
        query_sparse = models.SparseVector(**sparse[k])
        hits = client.query_points("hybrid", query=query_sparse, using="sparse", limit=3).points
        assert hits[0].payload["id"] == ids[k], hits
        hybrid = client.query_points(
            "hybrid", prefetch=[models.Prefetch(query=embedder.encode(texts[k]).tolist(), using="dense", limit=10),
                                models.Prefetch(query=query_sparse, using="sparse", limit=10)],
            query=models.FusionQuery(fusion=models.Fusion.RRF), limit=3).points
        assert hybrid[0].payload["id"] == ids[k], hybrid
