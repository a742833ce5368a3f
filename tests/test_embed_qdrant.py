"""engine embed --qdrant-collection: the job's vectors, ids and kept columns as points of a Qdrant local-mode
collection, upserted by id, so a run killed with kill -9 and resumed leaves every id exactly once; searched through
the real qdrant-client. The sparse slot (a sparse column -> the named sparse vector 'sparse') is tested on
the sink itself, with TF-IDF vectors built from the export's real tokenizer (no sparse model needed). Refusals:
test_hostile_qdrant.py.

all-MiniLM-L6-v2 (the session's export) on 120 short real texts; the stored vectors are compared with Embedder's.
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
from embed_helpers import run, write_corpus
from qdrant_client import models
from qdrant_helpers import (N, _client, _opts, _points, _recorded_rows, _stored_points, _success, check_collection,
                            corpus, expected, finished)
from test_embed_resume import _kill_when

from engine.bulk.job import EmbedJob
from engine.bulk.ledger import Ledger
from engine.bulk.output.qdrant import QdrantSink
from engine.bulk.output.qdrant_points import SPARSE_COLUMN, SPARSE_TYPE

__all__ = ["corpus", "expected", "finished"]  # the shared fixtures


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
