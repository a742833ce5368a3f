"""engine.SparseEncoder against sentence_transformers.SparseEncoder on real texts: encode_query / encode_document for
max and sum pooling, DistilBERT and an inference-free model (both sides), max_active_dims, decode, similarity, the
output types, encode_sparse, order and padding invariance, and max_active_dims <= 0 refused."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import SparseEncoder
from engine.errors import ConfigError

MODELS = ("bert-max", "bert-sum", "distilbert-max", "bert-inference-free")
ATOL = 1e-4


@pytest.fixture(scope="module")
def pairs(tiny_sparse_encoders, tiny_sparse_exports):
    """name -> (sentence-transformers' SparseEncoder on the folder, ours on the export)."""
    from sentence_transformers import SparseEncoder as STSparseEncoder

    return {name: (STSparseEncoder(str(tiny_sparse_encoders[name]), device="cpu"),
                   SparseEncoder(tiny_sparse_exports[name], device="cpu")) for name in MODELS}


@pytest.fixture(scope="module")
def texts(real_texts):
    """Short and long texts (long ones are cut at the tiny models' 64 tokens), interleaved so batches pad."""
    by_len = sorted(real_texts[:300], key=len)
    picked = by_len[::10]
    return [picked[j // 2] if j % 2 == 0 else picked[-(j // 2) - 1] for j in range(len(picked))]


def _dense(x) -> np.ndarray:
    return (x.to_dense() if x.is_sparse else x).numpy()


def _assert_same(got, want) -> None:
    """Same non-zero indices, values within ATOL."""
    g, w = _dense(got), _dense(want)
    assert g.shape == w.shape
    assert np.array_equal(g != 0, w != 0), f"{int(((g != 0) != (w != 0)).sum())} entries differ in being active"
    assert np.abs(g - w).max() <= ATOL


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("side", ["encode_query", "encode_document", "encode"])
def test_same_vectors_as_sentence_transformers(pairs, texts, name, side):
    st, ours = pairs[name]
    for bs in (7, 32):
        got, want = getattr(ours, side)(texts, batch_size=bs), getattr(st, side)(texts, batch_size=bs)
        assert got.is_sparse and got.shape == want.shape == (len(texts), 400)
        _assert_same(got, want)
    active = (_dense(want) != 0).sum(1)
    assert active.min() >= 1 and active.mean() <= 60  # sparse, as SPLADE is


def test_the_inference_free_sides_differ(pairs, texts):
    st, ours = pairs["bert-inference-free"]
    q, d = _dense(ours.encode_query(texts[:5])), _dense(ours.encode_document(texts[:5]))
    assert not np.allclose(q, d)
    assert ours.query_kind == "static" and pairs["bert-max"][1].query_kind == "document"


@pytest.mark.parametrize("name", ["bert-max", "bert-inference-free"])
def test_max_active_dims_as_sentence_transformers(pairs, texts, name):
    st, ours = pairs[name]
    for side in ("encode_query", "encode_document"):
        for k in (1, 5, 30):
            got, want = getattr(ours, side)(texts, max_active_dims=k), getattr(st, side)(texts, max_active_dims=k)
            _assert_same(got, want)
            assert (_dense(got) != 0).sum(1).max() <= k
    ours.max_active_dims = 5
    try:
        _assert_same(ours.encode_document(texts), st.encode_document(texts, max_active_dims=5))
        assert all(len(i) <= 5 for i, _ in ours.encode_sparse(texts))
        assert max(len(i) for i, _ in ours.encode_sparse(texts, max_active_dims=9)) == 9
    finally:
        ours.max_active_dims = None


@pytest.mark.parametrize("bad", [0, -3, True, 2.5])
def test_max_active_dims_must_be_positive(pairs, tiny_sparse_exports, bad):
    ours = pairs["bert-max"][1]
    with pytest.raises(ConfigError, match="max_active_dims must be a positive integer"):
        ours.encode(["a text"], max_active_dims=bad)
    with pytest.raises(ConfigError, match="max_active_dims must be a positive integer"):
        ours.encode_sparse(["a text"], max_active_dims=bad)
    with pytest.raises(ConfigError, match="max_active_dims must be a positive integer"):
        ours.max_active_dims = bad
    with pytest.raises(ConfigError, match="max_active_dims must be a positive integer"):
        SparseEncoder(tiny_sparse_exports["bert-max"], device="cpu", max_active_dims=bad)


def test_decode_and_similarity_as_sentence_transformers(pairs, texts):
    st, ours = pairs["bert-max"]
    got, want = ours.encode(texts[:6]), st.encode(texts[:6])
    for top_k in (None, 3):
        a, b = ours.decode(got, top_k=top_k), st.decode(want, top_k=top_k)
        assert [[t for t, _ in row] for row in a] == [[t for t, _ in row] for row in b]
        assert all(abs(x - y) <= ATOL for ra, rb in zip(a, b) for (_, x), (_, y) in zip(ra, rb))
    one = ours.decode(got[0], top_k=4)
    assert [t for t, _ in one] == [t for t, _ in st.decode(want[0], top_k=4)]
    assert [t for t, _ in ours.decode(ours.encode_sparse(texts[:1])[0], top_k=4)] == [t for t, _ in one]
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        ours.decode(got, top_k=0)
    assert torch.allclose(ours.similarity(got, got), st.similarity(want, want), atol=1e-3)
    assert torch.allclose(ours.similarity_pairwise(got, got), st.similarity_pairwise(want, want), atol=1e-3)
    assert ours.similarity_fn_name == st.similarity_fn_name == "dot"
    assert ours.get_sentence_embedding_dimension() == ours.get_embedding_dimension() == 400


def test_output_types_as_sentence_transformers(pairs, texts):
    st, ours = pairs["bert-inference-free"]
    single, single_st = ours.encode_query(texts[0]), st.encode_query(texts[0])
    assert single.is_sparse and single.shape == single_st.shape == (400,)
    _assert_same(single, single_st)
    rows = ours.encode_document(texts[:3], convert_to_tensor=False)
    assert isinstance(rows, list) and len(rows) == 3 and all(r.is_sparse and r.shape == (400,) for r in rows)
    dense = ours.encode_document(texts[:3], convert_to_sparse_tensor=False)
    assert not dense.is_sparse and dense.shape == (3, 400) and dense.dtype == torch.float32
    _assert_same(dense, st.encode_document(texts[:3], convert_to_sparse_tensor=False))
    empty, empty_st = ours.encode([]), st.encode([])
    assert empty.is_sparse and empty.shape == empty_st.shape
    assert ours.encode([], convert_to_tensor=False) == [] == st.encode([], convert_to_tensor=False)
    with pytest.raises(ValueError, match="additional keyword arguments"):
        ours.encode(["a"], normalize_embeddings=True)


def test_encode_sparse_rows_and_order_invariance(pairs, texts):
    ours = pairs["distilbert-max"][1]
    rows = ours.encode_sparse(texts, batch_size=32)
    assert len(rows) == len(texts)
    for idx, val in rows:
        assert idx.dtype == np.int32 and val.dtype == np.float32 and np.all(np.diff(idx) > 0) and np.all(val > 0)
    alone = [ours.encode_sparse([t])[0] for t in texts[:8]]
    reversed_rows = ours.encode_sparse(texts[::-1], batch_size=5)[::-1]
    for (i, v), (ai, av), (ri, rv) in zip(rows, alone, reversed_rows):
        assert np.array_equal(i, ai) and np.array_equal(i, ri)
        assert np.abs(v - av).max() <= ATOL and np.abs(v - rv).max() <= ATOL
    q = pairs["bert-inference-free"][1].encode_sparse(texts[:4], query=True)
    want = pairs["bert-inference-free"][0].encode_query(texts[:4])
    _assert_same(torch.stack([torch.sparse_coo_tensor(torch.from_numpy(i.astype(np.int64))[None], torch.from_numpy(v), (400,),
                                                      check_invariants=True)
                              for i, v in q]), want)


def test_without_torch_the_same_rows_as_numpy_and_scipy(pairs, tiny_sparse_exports, texts, tmp_path):
    """The core install (torch blocked) gives scipy csr_array / numpy answers with the same values."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).parent
    folder = tiny_sparse_exports["bert-inference-free"]
    (tmp_path / "texts.json").write_text(json.dumps(texts[:10]))
    code = (f"import json, numpy as np; from engine import SparseEncoder; t = json.load(open({str(tmp_path / 'texts.json')!r}));"
            f"m = SparseEncoder({str(folder)!r}, device='cpu'); q = m.encode_query(t); d = m.encode_document(t, "
            "convert_to_sparse_tensor=False); assert type(q).__name__ == 'csr_array' and isinstance(d, np.ndarray);"
            f"np.save({str(tmp_path / 'q.npy')!r}, q.toarray()); np.save({str(tmp_path / 'd.npy')!r}, d)")
    proc = subprocess.run([sys.executable, str(here / "torch_free.py"), "-c", code], capture_output=True, text=True,
                          cwd=here.parent, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ours = pairs["bert-inference-free"][1]
    assert np.array_equal(np.load(tmp_path / "q.npy"), _dense(ours.encode_query(texts[:10])))
    assert np.abs(np.load(tmp_path / "d.npy") - _dense(ours.encode_document(texts[:10]))).max() <= 1e-6


def test_model_folders_are_exported_on_first_use(pairs, tiny_sparse_encoders, texts, tmp_path):
    """A SparseEncoder folder (here a Router, with no config.json at its root) exports into the cache on first use
    and gives the export's vectors; a second start finds the entry."""
    cache = str(tmp_path / "cache")
    first = SparseEncoder(tiny_sparse_encoders["bert-inference-free"], device="cpu", cache_dir=cache)
    ours = pairs["bert-inference-free"][1]
    for query in (True, False):
        for (i, v), (wi, wv) in zip(first.encode_sparse(texts[:6], query=query), ours.encode_sparse(texts[:6], query=query)):
            assert np.array_equal(i, wi) and np.abs(v - wv).max() <= 1e-6
    again = SparseEncoder(tiny_sparse_encoders["bert-inference-free"], device="cpu", cache_dir=cache)
    assert again.model_dir == first.model_dir and first.manifest["task"] == "sparse"
