"""Shared by the Qdrant sink's tests (test_embed_qdrant.py, test_hostile_qdrant.py): a corpus of 120 short real texts
with string ids, Embedder's vectors of them, a finished collection, and readers of a Qdrant local-mode folder."""
from __future__ import annotations

import json
import shutil
import sqlite3
import uuid
from pathlib import Path

import numpy as np
import pytest
from embed_helpers import run, write_corpus
from qdrant_client import QdrantClient

from engine.bulk.output.qdrant_points import POINT_NAMESPACE

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
