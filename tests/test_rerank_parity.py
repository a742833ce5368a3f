"""Rerankers against sentence-transformers' CrossEncoder on tiny random BERT, XLM-R, ModernBERT and Qwen3 cross-encoders:
the export's gate, predict's and rank's values (padded batches of real text pairs), and the invariances."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine import Embedder, Reranker
from engine.errors import ConfigError

ARCHS = ("bert", "xlm-roberta", "modernbert", "qwen3")


@pytest.fixture(scope="module")
def pairs(real_texts) -> list[tuple[str, str]]:
    """Real (query, document) pairs of mixed lengths: short pydoc lines against paragraphs up to past max_length."""
    queries = [t for t in real_texts if len(t.split()) <= 8][:6]
    docs = real_texts[::37][:20]
    return [(q, d) for q in queries for d in docs]


@pytest.fixture(scope="module")
def cross_encoder():
    from sentence_transformers import CrossEncoder

    return lambda folder: CrossEncoder(str(folder), device="cpu")


@pytest.mark.parametrize("arch", ARCHS)
def test_export_writes_a_validated_score_graph(tiny_rerankers, arch):
    manifest = json.loads((tiny_rerankers[arch] / "manifest.json").read_text())
    assert manifest["task"] == "rerank" and manifest["input"] == "pair" and manifest["valid"]
    assert manifest["head_outputs"] == {"score": "scores"} and (tiny_rerankers[arch] / "score.onnx").is_file()
    assert not (tiny_rerankers[arch] / "embed.onnx").exists()
    gate = manifest["parity"]["score"]["outputs"]["scores"]
    assert gate["max_abs"] <= 1e-4 and gate["order_kept"] == 1.0, gate
    assert manifest["activation"] == "sigmoid" and manifest["num_labels"] == 1


@pytest.mark.parametrize("arch", ARCHS)
def test_predict_and_rank_match_cross_encoder(tiny_rerankers, tiny_cross_encoders, cross_encoder, pairs, arch):
    ce, rr = cross_encoder(tiny_cross_encoders[arch]), Reranker(tiny_rerankers[arch], device="cpu")
    want, got = ce.predict(pairs), rr.predict(pairs)
    assert got.shape == want.shape == (len(pairs),) and got.dtype == np.float32
    assert np.abs(got - want).max() <= 1e-4
    raw_want = ce.predict(pairs, activation_fn=__import__("torch").nn.Identity())
    assert np.abs(rr.predict(pairs, activation_fn=__import__("torch").nn.Identity()) - raw_want).max() <= 1e-4
    assert np.ptp(raw_want) > 0.05  # the random head really ranks (a constant score would agree trivially)
    query, docs = pairs[0][0], [d for _, d in pairs[:20]]
    a, b = rr.rank(query, docs, top_k=10, return_documents=True), ce.rank(query, docs, top_k=10, return_documents=True)
    assert [r["corpus_id"] for r in a] == [r["corpus_id"] for r in b]
    assert [r["text"] for r in a] == [r["text"] for r in b]
    assert max(abs(x["score"] - y["score"]) for x, y in zip(a, b)) <= 1e-4


def test_qwen3_scores_the_last_real_token_whichever_side_pads(tiny_rerankers, tiny_cross_encoders, cross_encoder, pairs):
    """Qwen3ForSequenceClassification scores the last non-pad token: the engine pads right, an LLM reranker's
    tokenizer often pads left (the published seq-cls checkpoints do); both must agree, and each pair alone."""
    import torch

    ce, rr = cross_encoder(tiny_cross_encoders["qwen3"]), Reranker(tiny_rerankers["qwen3"], device="cpu")
    assert rr.num_labels == 1 and rr.activation == "sigmoid"
    got = rr.predict(pairs, activation_fn=torch.nn.Identity())
    assert rr.stats.padded_tokens > rr.stats.real_tokens  # the batches really padded (right)
    ce[0].tokenizer.padding_side = "left"
    assert np.abs(got - ce.predict(pairs, activation_fn=torch.nn.Identity())).max() <= 1e-4
    alone = np.array([float(rr.predict(p, activation_fn=torch.nn.Identity())) for p in pairs[:8]])
    assert np.abs(alone - got[:8]).max() <= 1e-4


def test_batching_order_and_single_pair_invariance(tiny_rerankers, pairs):
    rr = Reranker(tiny_rerankers["bert"], device="cpu")
    full = rr.predict(pairs)
    assert rr.stats.padded_tokens > rr.stats.real_tokens  # the batches really padded
    perm = np.random.default_rng(0).permutation(len(pairs))
    assert np.allclose(rr.predict([pairs[i] for i in perm]), full[perm], atol=1e-6)
    assert np.allclose(rr.predict(pairs, batch_size=1), full, atol=1e-5)
    single = rr.predict(pairs[3])
    assert np.ndim(single) == 0 and abs(float(single) - full[3]) <= 1e-5


def test_three_labels_and_softmax(tiny_rerankers, tiny_cross_encoders, cross_encoder, pairs):
    ce, rr = cross_encoder(tiny_cross_encoders["bert-3labels"]), Reranker(tiny_rerankers["bert-3labels"], device="cpu")
    assert rr.num_labels == 3 and rr.activation == "identity"
    assert np.abs(rr.predict(pairs) - ce.predict(pairs)).max() <= 1e-4
    got, want = rr.predict(pairs, apply_softmax=True), ce.predict(pairs, apply_softmax=True)
    assert got.shape == (len(pairs), 3) and np.abs(got - want).max() <= 1e-5
    with pytest.raises(ValueError, match="num_labels=1"):
        rr.rank("q", ["d"])


def test_answer_types_follow_cross_encoder(tiny_rerankers, tiny_cross_encoders, cross_encoder, pairs):
    import torch

    ce, rr = cross_encoder(tiny_cross_encoders["bert"]), Reranker(tiny_rerankers["bert"], device="cpu")
    assert isinstance(rr.predict(pairs[:2], convert_to_tensor=True), torch.Tensor)
    listed = rr.predict(pairs[:2], convert_to_numpy=False)
    assert isinstance(listed, list) and all(isinstance(x, torch.Tensor) for x in listed)
    assert type(rr.predict([])) is type(ce.predict([])) and len(rr.predict([])) == 0


def test_long_documents_chunked_take_the_best_window(tiny_rerankers, real_texts):
    """long_text="chunk": each window of the document with the whole query; the pair's score is the best window's."""
    long_doc = max(real_texts, key=len)
    rr = Reranker(tiny_rerankers["bert"], device="cpu", long_text="chunk", chunk_stride=4)
    seqs = rr.pair_sequences([("what is a class", long_doc)])
    assert len(seqs.ids) > 3 and max(len(x) for x in seqs.ids) <= rr.max_length
    from engine.runtime.batching import pad_batch

    windows = [float(rr.score_batch(pad_batch(seqs.ids, np.array([s]), rr.pad_id, 1, seqs.type_ids))[0, 0])
               for s in range(len(seqs.ids))]
    got = float(rr.predict([("what is a class", long_doc)], activation_fn=__import__("torch").nn.Identity())[0])
    assert abs(got - max(windows)) <= 1e-5
    truncated = Reranker(tiny_rerankers["bert"], device="cpu").predict([("what is a class", long_doc)])
    assert truncated.shape == (1,)


def test_the_wrong_task_is_refused_naming_it(tiny_rerankers, tiny_cross_encoders, minilm_export, minilm_path):
    with pytest.raises(ConfigError, match="is a reranker"):
        Embedder(tiny_rerankers["bert"])
    with pytest.raises(ConfigError, match="is a reranker"):
        Embedder(tiny_cross_encoders["bert"])  # refused before any export runs
    with pytest.raises(ConfigError, match="is an embedding model"):
        Reranker(minilm_export)
    with pytest.raises(ConfigError, match="is an embedding model"):
        Reranker(minilm_path)
    with pytest.raises(ConfigError, match="needs a cross-encoder"):
        Reranker()
    with pytest.raises(ConfigError, match="pooling shapes embeddings"):
        Reranker(tiny_rerankers["bert"], pooling="mean")


def test_bad_pairs_name_the_item(tiny_rerankers):
    rr = Reranker(tiny_rerankers["bert"], device="cpu")
    with pytest.raises(TypeError, match=r"inputs\[1\]"):
        rr.predict([("a", "b"), ("a", 3)])
    with pytest.raises(TypeError, match=r"documents\[0\]"):
        rr.rank("q", [None])
    with pytest.raises(TypeError, match="query must be a string"):
        rr.rank(None, ["d"])
    with pytest.raises(ValueError, match="top_k"):
        rr.rank("q", ["d"], top_k=0)
