"""Embedder is a drop-in for SentenceTransformer: every name its encode accepts, checked against sentence-transformers."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

from engine import Embedder


@pytest.fixture(scope="module")
def texts(real_texts) -> list[str]:
    return [t for t in real_texts if 20 < len(t) < 600][:12]


def cos_min(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(((a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))).min())


def test_every_encode_name_of_sentence_transformers_is_accepted(st_model):
    ours = inspect.signature(Embedder.encode).parameters
    theirs = [n for n, p in inspect.signature(type(st_model).encode).parameters.items()
              if n != "self" and p.kind is not p.VAR_KEYWORD]
    assert [n for n in theirs if n not in ours] == []
    positional = [n for n, p in ours.items() if p.kind is p.POSITIONAL_OR_KEYWORD and n != "self"]
    assert positional == theirs  # same positional order: encode(texts, "query", None, 16) means the same


@pytest.mark.parametrize("kwargs", [
    {},
    {"prompt": "query: "},
    {"batch_size": 3},
    {"show_progress_bar": False},
    {"device": "cpu"},
    {"normalize_embeddings": True},
    {"truncate_dim": 128},
    {"truncate_dim": 128, "normalize_embeddings": True},
    {"pool": None, "chunk_size": None},
], ids=lambda k: ",".join(k) or "defaults")
def test_encode_matches_sentence_transformers(embedder, st_model, texts, kwargs):
    ours = embedder.encode(inputs=texts, **kwargs)
    ref = st_model.encode(inputs=texts, **kwargs)
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    assert np.abs(ours - ref).max() < 1e-4 and cos_min(ours, ref) > 0.99999
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), np.linalg.norm(ref, axis=1), atol=1e-5)


def test_matryoshka_truncates_then_normalizes(embedder, texts):
    out = embedder.encode(texts, normalize_embeddings=True, truncate_dim=128)
    assert out.shape == (len(texts), 128)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_output_precisions_match_sentence_transformers(embedder, st_model, texts, precision):
    ours = embedder.encode(texts, precision=precision)
    ref = st_model.encode(texts, precision=precision)
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    # floats agree to ~1e-7, so a value may land on the other side of a bin edge: at most one step, rarely
    diff = np.abs(ours.astype(np.int32) - ref.astype(np.int32))
    assert diff.max() <= (1 if precision in ("int8", "uint8") else 0) or (diff > 0).mean() < 0.002


def test_containers_single_text_and_old_name(embedder, st_model, texts):
    assert embedder.encode(texts[0]).shape == st_model.encode(texts[0]).shape == (384,)
    as_list = embedder.encode(texts[:3], convert_to_numpy=False)
    assert isinstance(as_list, list) and len(as_list) == 3
    tensor = embedder.encode(texts[:3], convert_to_tensor=True)
    assert type(tensor).__name__ == "Tensor" and tuple(tensor.shape) == (3, 384)
    np.testing.assert_array_equal(embedder.encode(sentences=texts[:3]), embedder.encode(texts[:3]))
    with pytest.raises(TypeError, match="not both"):
        embedder.encode(texts, sentences=texts)


def test_similarity_dimension_and_max_seq_length(embedder, st_model, texts):
    a, b = embedder.encode(texts[:5]), embedder.encode(texts[5:9])
    np.testing.assert_allclose(embedder.similarity(a, b), st_model.similarity(a, b).numpy(), atol=1e-6)
    np.testing.assert_allclose(embedder.similarity_pairwise(a[:4], b), st_model.similarity_pairwise(a[:4], b).numpy(), atol=1e-6)
    assert embedder.get_sentence_embedding_dimension() == st_model.get_sentence_embedding_dimension() == 384
    assert embedder.max_seq_length == 256
    long = " ".join(texts) * 3
    try:
        embedder.max_seq_length = st_model.max_seq_length = 32
        np.testing.assert_allclose(embedder.encode(long), st_model.encode(long), atol=1e-4)
    finally:
        embedder.max_seq_length = st_model.max_seq_length = 256
    with pytest.raises(Exception, match="max_seq_length must be an integer in 2..256"):
        embedder.max_seq_length = 1000


def test_encode_refuses_what_it_cannot_honour(embedder, texts):
    with pytest.raises(ValueError, match="runs on 'cpu'"):
        embedder.encode(texts, device="cuda")
    with pytest.raises(ValueError, match="truncate_dim must be in 1..384"):
        embedder.encode(texts, truncate_dim=1000)
    with pytest.raises(ValueError, match="pool"):
        embedder.encode(texts, pool={"processes": []})
