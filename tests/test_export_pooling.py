"""Every in-graph pooling mode against a numpy reference built from PyTorch's hidden states."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import cpu_session
from export import POOLING_MODES, ExportOptions, export_model

LENGTHS = [1, 9, 64, 2, 30, 17, 5]  # one padded batch: every row but the longest has pads


def _mean(tokens: np.ndarray) -> np.ndarray:
    return tokens.mean(0)


def numpy_pooling(mode: str, want: dict, k: int, pooler_weights) -> np.ndarray:
    """The reference for one unpadded sequence: want holds (t,H) / (L+1,t,H) arrays from PyTorch."""
    h = want["last_hidden_state"].astype(np.float64)  # (t, H)
    if "+" in mode:  # several modes, concatenated in the order named
        return np.concatenate([numpy_pooling(m, want, k, pooler_weights) for m in mode.split("+")])
    if mode == "cls":
        return h[0]
    if mode == "mean":
        return _mean(h)
    if mode == "max":
        return h.max(0)
    if mode == "mean-sqrt-len":  # sum / sqrt(tokens)
        return h.sum(0) / np.sqrt(h.shape[0])
    if mode == "lasttoken":  # the last real token; the batch is right-padded, so it sits before the pads
        return h[-1]
    if mode == "weighted-mean":  # sentence-transformers 'weightedmean': token i weighs i + 1
        w = np.arange(1, h.shape[0] + 1, dtype=np.float64)[:, None]
        return (h * w).sum(0) / w.sum()
    if mode == "pooler":  # BERT pooler: tanh(W h_cls + b)
        weight, bias = pooler_weights
        return np.tanh(weight @ h[0] + bias)
    last = want["hidden_states"][-k:].astype(np.float64)  # (k, t, H)
    how = mode.rsplit("-", 1)[1]
    per_token = {"mean": last.mean(0), "max": last.max(0), "concat": np.concatenate(list(last), axis=-1)}[how]
    return _mean(per_token)


@pytest.fixture(scope="module")
def pooled_batch(tiny_models, real_texts, export_helpers, tmp_path_factory):
    """Rows of LENGTHS from the tiny BERT's tokenizer, their PyTorch reference, and the pooler weights."""
    root = tmp_path_factory.mktemp("pooling")
    rows = export_helpers.rows_of_lengths(tiny_models["bert"], real_texts, LENGTHS)
    ref = export_helpers.reference(tiny_models["bert"])
    dense = ref.model.pooler.dense
    weights = (dense.weight.detach().numpy().astype(np.float64), dense.bias.detach().numpy().astype(np.float64))
    return root, rows, ref(rows, with_token_types=True), weights


# every mode raw; L2 normalization (the same graph tail for every mode) on two of them; three modes concatenated
CASES = [(mode, False) for mode in POOLING_MODES] + [("mean", True), ("last-k-concat", True),
                                                     ("lasttoken+cls+mean-sqrt-len", True)]


@pytest.mark.parametrize("mode,normalize", CASES, ids=[f"{m}-{'l2' if n else 'raw'}" for m, n in CASES])
def test_pooling_mode_matches_numpy_reference(mode, normalize, pooled_batch, tiny_models, export_helpers):
    root, rows, wants, pooler_weights = pooled_batch
    out = root / f"{mode}-{normalize}"
    k = 4  # default: with 3 layers this spans the embedding output and every layer
    m = export_model(ExportOptions(model=str(tiny_models["bert"]), out_dir=str(out), pooling=mode, normalize=normalize),
                     log=lambda _m: None)
    assert m["valid"] and m["pooling"] == mode and m["normalize"] is normalize and m["last_k"] == k
    dim = 32 * k if mode == "last-k-concat" else 32 * len(mode.split("+"))
    assert m["embedding_dim"] == dim
    feed = export_helpers.pad_rows(rows, m["inputs"], m["pad_token_id"])
    (got,) = cpu_session(out / "embed.onnx").run(["sentence_embedding"], feed)
    assert got.shape == (len(rows), dim)
    for i, want in enumerate(wants):
        expected = numpy_pooling(mode, want, k, pooler_weights)
        if normalize:
            expected = expected / np.linalg.norm(expected)
            assert abs(np.linalg.norm(got[i]) - 1.0) < 1e-5
        np.testing.assert_allclose(got[i], expected, atol=1e-5, rtol=1e-5, err_msg=f"{mode} row {i} (length {LENGTHS[i]})")


@pytest.mark.parametrize("mode,k", [("last-k-mean", 2), ("last-k-max", 1), ("last-k-concat", 3)])
def test_last_k_honours_k(mode, k, pooled_batch, tiny_models, export_helpers):
    root, rows, wants, pooler_weights = pooled_batch
    out = root / f"{mode}-k{k}"
    m = export_model(ExportOptions(model=str(tiny_models["bert"]), out_dir=str(out), pooling=mode, last_k=k), log=lambda _m: None)
    assert m["last_k"] == k and m["embedding_dim"] == (32 * k if mode == "last-k-concat" else 32)
    feed = export_helpers.pad_rows(rows, m["inputs"], m["pad_token_id"])
    (got,) = cpu_session(out / "embed.onnx").run(["sentence_embedding"], feed)
    for i, want in enumerate(wants):
        np.testing.assert_allclose(got[i], numpy_pooling(mode, want, k, pooler_weights), atol=1e-5, rtol=1e-5)
    if mode == "last-k-max" and k == 1:  # max over one layer is that layer: same as mean pooling of the last layer
        np.testing.assert_allclose(got[0], numpy_pooling("mean", wants[0], k, pooler_weights), atol=1e-5)


def test_pooling_modes_disagree(pooled_batch):
    """The references are not all the same vector (a test with identical references would prove little)."""
    _root, _rows, wants, weights = pooled_batch
    vecs = {m: numpy_pooling(m, wants[2], 4, weights) for m in POOLING_MODES if m != "last-k-concat"}
    names = list(vecs)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            assert not np.allclose(vecs[names[a]], vecs[names[b]], atol=1e-4), (names[a], names[b])
