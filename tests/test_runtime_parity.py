"""Embedder against sentence-transformers, and the invariances that batching must keep."""
from __future__ import annotations

import numpy as np
import pytest

from engine import Embedder


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_parity_with_sentence_transformers_on_1000_real_texts(embedder, st_model, real_texts):
    texts = real_texts[:1000]
    ours = embedder.encode(texts)
    ref = st_model.encode(texts, batch_size=64, convert_to_numpy=True)
    assert ours.shape == ref.shape == (1000, 384)
    assert _cos(ours, ref).min() >= 0.99999
    assert np.abs(ours - ref).max() < 1e-4


def test_batches_really_pad_and_stay_within_overhead(embedder, real_texts):
    embedder.reset_stats()
    embedder.encode(real_texts[:1000])
    s = embedder.stats
    assert s.padded_tokens > s.real_tokens  # batches did pad
    assert s.pad_overhead <= 0.05
    assert s.texts == 1000 and s.batches > 1


def test_text_alone_equals_text_in_batch_of_long_texts(embedder, real_texts):
    long_texts = sorted(real_texts, key=len)[-12:]
    short = "Then I tried to find some way of embracing my mother's ghost."
    alone = embedder.encode([short])[0]
    batched = embedder.encode(long_texts[:6] + [short] + long_texts[6:], batch_size=13)[6]
    assert np.abs(alone - batched).max() <= 1e-5


def test_output_order_matches_shuffled_input(embedder, real_texts):
    texts = real_texts[:300]
    base = embedder.encode(texts)
    perm = np.random.default_rng(7).permutation(len(texts))
    shuffled = embedder.encode([texts[i] for i in perm])
    assert np.abs(shuffled - base[perm]).max() <= 1e-5


def test_empty_list_and_single_string(embedder):
    assert embedder.encode([]).shape == (0,)  # as sentence-transformers (tests/test_dropin_patterns.py: every form)
    one = embedder.encode("hello world")
    assert one.shape == (384,)
    assert np.abs(one - embedder.encode(["hello world"])[0]).max() == 0


def test_empty_strings_embed_like_sentence_transformers(embedder, st_model):
    ours = embedder.encode(["", "not empty"])
    ref = st_model.encode(["", "not empty"])
    assert _cos(ours, ref).min() >= 0.99999


def test_truncated_texts_are_counted(embedder, real_texts):
    long_texts = [t for t in real_texts if len(t.split()) > 400][:3]
    assert long_texts, "corpus has long paragraphs"
    embedder.reset_stats()
    embedder.encode(long_texts + ["short"])
    assert embedder.stats.truncated == len(long_texts)


def test_output_options_match_sentence_transformers(embedder, st_model, real_texts):
    from sentence_transformers.quantization import quantize_embeddings

    texts = real_texts[:40]
    ref = st_model.encode(texts)
    for precision in ("int8", "uint8", "binary", "ubinary"):
        ours = embedder.encode(texts, precision=precision)
        want = quantize_embeddings(ref, precision=precision)
        assert ours.dtype == want.dtype and ours.shape == want.shape
        # Quantization boundaries may flip for values within float noise of a step edge.
        assert (ours.astype(np.int32) != want.astype(np.int32)).mean() < 0.01
    assert embedder.encode(texts, truncate_dim=64).shape == (40, 64)
    tensor = embedder.encode(texts[:2], convert_to_tensor=True)
    assert tuple(tensor.shape) == (2, 384)
    as_list = embedder.encode(texts[:3], convert_to_numpy=False)
    assert isinstance(as_list, list) and len(as_list) == 3


def test_token_embeddings_match_sentence_transformers(embedder, st_model):
    """The default fp32 export (what the README's `engine export` makes) has token embeddings."""
    emb = embedder
    texts = ["a short one", "a somewhat longer sentence that pads the first one in its batch"]
    ours = emb.encode(texts, output_value="token_embeddings")
    ref = st_model.encode(texts, output_value="token_embeddings")
    for o, r in zip(ours, ref):
        assert o.shape == tuple(r.shape)
        assert np.abs(o - r.numpy()).max() < 1e-4
