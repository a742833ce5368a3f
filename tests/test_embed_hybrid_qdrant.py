"""engine embed --model DENSE --sparse-model SPLADE --qdrant-collection: one job writes both named vectors of every
point (dense 'dense', sparse 'sparse'), equal to Embedder.encode and SparseEncoder.encode_sparse, and a hybrid query
(dense + sparse prefetch fused with RRF) through the real client runs on them; a sparse --model alone makes a
sparse-only collection."""
from __future__ import annotations

import numpy as np
from qdrant_client import QdrantClient, models
from embed_helpers import run, write_corpus
from qdrant_helpers import pieces

from engine import SparseEncoder
from engine.bulk.output.qdrant_points import point_id

N = 60


def _points(db, name="docs"):
    client = QdrantClient(path=str(db))
    try:
        return client, client.scroll(name, limit=1000, with_payload=True, with_vectors=True)[0]
    except Exception:
        client.close()
        raise


def test_dense_and_sparse_in_one_job_then_a_hybrid_query(real_texts, minilm_export, tiny_sparse_exports, embedder, tmp_path):
    texts, ids = pieces(real_texts, N), [f"d{i:03d}" for i in range(N)]
    src = write_corpus(tmp_path / "in.jsonl", "jsonl", texts, ids=ids)
    db = tmp_path / "db"
    r = run([src, db, "--qdrant-collection", "docs", "--model", minilm_export, "--sparse-model",
             tiny_sparse_exports["bert-max"], "--id-column", "id", "--keep-columns", "text", "--rows-per-part", 20,
             "--window-rows", 10, "--threads", 1])
    assert r.exit_code == 0, r.output
    dense = embedder.encode(texts)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    rows = SparseEncoder(tiny_sparse_exports["bert-max"]).encode_sparse(texts)
    client, points = _points(db)
    try:
        assert len(points) == N
        by_id = {p.payload["id"]: p for p in points}
        for i, doc_id in enumerate(ids):
            p = by_id[doc_id]
            assert str(p.id) == str(point_id(doc_id))
            np.testing.assert_allclose(p.vector["dense"], dense[i], atol=2e-5)
            sv = p.vector["sparse"]
            order = np.argsort(sv.indices)
            np.testing.assert_array_equal(np.asarray(sv.indices)[order], rows[i][0])
            np.testing.assert_allclose(np.asarray(sv.values)[order], rows[i][1], atol=1e-6)
        q = 5
        qi, qv = rows[q]
        hits = client.query_points("docs", prefetch=[
            models.Prefetch(query=dense[q].tolist(), using="dense", limit=10),
            models.Prefetch(query=models.SparseVector(indices=qi.tolist(), values=qv.tolist()), using="sparse", limit=10)],
            query=models.FusionQuery(fusion=models.Fusion.RRF), limit=3, with_payload=True).points
        assert hits[0].payload["id"] == ids[q]  # the text itself ranks first on both sides
    finally:
        client.close()


def test_a_sparse_model_alone_makes_a_sparse_only_collection(real_texts, tiny_sparse_exports, tmp_path):
    texts = pieces(real_texts, 20)
    src = write_corpus(tmp_path / "in.jsonl", "jsonl", texts, ids=list(range(20)))
    db = tmp_path / "db"
    r = run([src, db, "--qdrant-collection", "docs", "--model", tiny_sparse_exports["bert-sum"], "--id-column", "id",
             "--threads", 1])
    assert r.exit_code == 0, r.output
    rows = SparseEncoder(tiny_sparse_exports["bert-sum"]).encode_sparse(texts)
    client, points = _points(db)
    try:
        assert sorted(p.id for p in points) == list(range(20))
        for p in points:
            assert set(p.vector) == {"sparse"}
            sv = p.vector["sparse"]
            order = np.argsort(sv.indices)
            np.testing.assert_array_equal(np.asarray(sv.indices)[order], rows[p.id][0])
    finally:
        client.close()
