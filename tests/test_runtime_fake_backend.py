"""The runtime pipeline (tokenize -> batch -> prefetch -> backend -> head -> input order) on a fake backend: no model."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from engine.errors import ConfigError
from engine.runtime.backend import feed
from engine.runtime.batching import padded_batches, text_windows
from engine.runtime.heads import HEADS
from export.manifest import HEAD_OUTPUTS, model_io
from fakes import DIM, FakeBackend, expected_vector, fake_embedder, fake_manifest, fake_tokenizer, sentence

rng = np.random.default_rng(0)


def texts(n: int) -> list[str]:
    return [sentence(rng, int(k)) for k in rng.integers(1, 40, size=n)]


def test_every_vector_goes_back_to_its_own_text_in_order():
    backend = FakeBackend()
    emb = fake_embedder(backend, max_batch_tokens=256)
    batch = texts(500)
    out = emb.encode(batch)
    want = np.stack([expected_vector(emb.rust_tokenizer.encode(t).ids) for t in batch])
    np.testing.assert_array_equal(out, want)
    assert len(backend.batches) > 10  # really batched
    assert any((b.attention_mask == 0).any() for b in backend.batches)  # and really padded
    assert all(b.input_ids.size <= 256 or len(b.index) == 1 for b in backend.batches)


def test_batch_equals_single_and_order_does_not_matter():
    emb = fake_embedder(max_batch_tokens=128)
    batch = texts(60)
    together = emb.encode(batch)
    alone = np.stack([emb.encode(t) for t in batch])
    reversed_ = emb.encode(batch[::-1])[::-1]
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(together, reversed_)


def test_truncation_keeps_max_length_tokens_and_is_counted():
    emb = fake_embedder(max_length=8)
    out = emb.encode(["the " * 50, "a b"])
    assert out[0][0] == 8 and emb.stats.truncated == 1


def test_the_token_head_returns_each_texts_own_tokens_without_padding():
    emb = fake_embedder(max_batch_tokens=64)
    batch = texts(40)
    tokens = emb.encode(batch, output_value="token_embeddings")
    for text, t in zip(batch, tokens):
        ids = emb.rust_tokenizer.encode(text).ids
        assert t.shape == (len(ids), DIM)
        np.testing.assert_array_equal(t[:, 0], ids)


def test_a_missing_head_is_a_config_error_naming_the_export_flag():
    emb = fake_embedder(manifest=fake_manifest(token_embeddings=False))
    with pytest.raises(ConfigError, match="without the 'tokens' head.*--token-embeddings"):
        emb.encode(["a text"], output_value="token_embeddings")


def test_a_backend_error_reaches_the_caller_and_stops_the_prefetch_thread():
    unk = fake_tokenizer().token_to_id("[UNK]")
    emb = fake_embedder(FakeBackend(fail_on_token=unk), max_batch_tokens=64)
    before = set(threading.enumerate())
    with pytest.raises(RuntimeError, match="refuses token"):
        emb.encode(texts(300) + ["zebra"] + texts(300))
    for t in [t for t in threading.enumerate() if t.name == "engine-prefetch" and t not in before]:
        t.join(timeout=10)
        assert not t.is_alive()


def test_batches_are_prepared_off_the_calling_thread():
    backend = FakeBackend()
    emb = fake_embedder(backend, max_batch_tokens=64)
    emb.encode(texts(200))
    assert backend.threads == {threading.current_thread().name}  # the backend runs in the caller's thread ...
    # ... while tokenizing and padding ran in the prefetch thread (its batches were ready before each run)
    assert emb.stats.batches == len(backend.batches)


def test_text_pairs_reach_the_backend_with_segment_ids():
    tok = fake_tokenizer()
    pairs = [("the man", "a state of the art"), ("one", "two")]
    seen = 0
    for _, batch in padded_batches(text_windows(tok, pairs, 8, []), 1024, None, 0, 1):
        arrays = feed(batch, FakeBackend.inputs)
        for r, i in enumerate(batch.index):
            enc = tok.encode(*pairs[i])
            n = len(enc.ids)
            np.testing.assert_array_equal(arrays["input_ids"][r, :n], enc.ids)
            np.testing.assert_array_equal(arrays["token_type_ids"][r, :n], enc.type_ids)
            assert arrays["token_type_ids"][r, n:].sum() == 0 and arrays["token_type_ids"][r].max() == 1
            seen += 1
    assert seen == len(pairs)


def test_single_texts_get_zero_segment_ids():
    (_, batch), = list(padded_batches(text_windows(fake_tokenizer(), ["the man"], 8, []), 1024, None, 0, 1))
    assert batch.token_type_ids is None and not feed(batch, FakeBackend.inputs)["token_type_ids"].any()


def test_every_head_the_manifest_can_name_has_a_post_processing_step():
    assert set(HEADS) == set(HEAD_OUTPUTS)


def test_manifests_without_heads_read_as_single_text_models_with_their_outputs():
    old = fake_manifest()
    del old["head_outputs"], old["input"]
    assert model_io(old) == ("text", {"pooled": "sentence_embedding", "tokens": "token_embeddings"})
    old["outputs"]["embed.onnx"] = ["sentence_embedding"]
    assert model_io(old) == ("text", {"pooled": "sentence_embedding"})


def test_an_unknown_embedder_option_is_a_config_error_naming_the_valid_ones():
    from engine import Embedder

    with pytest.raises(ConfigError, match="unknown option 'devcie'.*device"):
        Embedder(devcie="cpu")
