"""Every pooling mode, run through Embedder, against numpy pooling of PyTorch hidden states (hand-computed mask)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from engine import Embedder
from engine.runtime.pooling import (cls_pool, last_k_pool, last_token_pool, max_pool, mean_pool, mean_sqrt_len_pool,
                                    weighted_mean_pool)
from export import POOLING_MODES, ExportOptions, export_model

TEXTS = ["a", "short text here", "Then I tried to find some way of embracing my mother's ghost.",
         "Every pooling mode is checked against a reference computed by hand from the hidden states and the mask."]


@pytest.fixture(scope="module")
def tiny_bert(minilm_path, tmp_path_factory):
    """A random 3-layer BERT with all-MiniLM-L6-v2's tokenizer (same 30522-token uncased vocab)."""
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny") / "tiny-bert"
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=48, num_hidden_layers=3, num_attention_heads=4,
                     intermediate_size=96, max_position_embeddings=128)
    BertModel(cfg).eval().save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(minilm_path / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def hidden(tiny_bert):
    """PyTorch hidden states of TEXTS in one padded batch: (L+1, B, T, H), mask (B, T), pooler (B, H)."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    model = AutoModel.from_pretrained(tiny_bert).eval()
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True)
    return torch.stack(out.hidden_states).numpy(), enc["attention_mask"].numpy(), out.pooler_output.numpy()


def _reference(mode: str, hs: np.ndarray, mask: np.ndarray, pooler: np.ndarray) -> np.ndarray:
    last = hs[-1]
    table = {"cls": lambda: cls_pool(last, mask), "mean": lambda: mean_pool(last, mask), "max": lambda: max_pool(last, mask),
             "weighted-mean": lambda: weighted_mean_pool(last, mask), "pooler": lambda: pooler,
             "mean-sqrt-len": lambda: mean_sqrt_len_pool(last, mask), "lasttoken": lambda: last_token_pool(last, mask)}
    if mode in table:
        return table[mode]()
    return last_k_pool(hs, mask, 2, mode.rsplit("-", 1)[1])


def test_hand_computed_mask_pooling_on_a_tiny_example():
    hidden = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)  # (B=2, T=3, H=2)
    mask = np.array([[1, 1, 0], [1, 0, 0]])
    assert np.allclose(mean_pool(hidden, mask), [[1, 2], [6, 7]])
    assert np.allclose(max_pool(hidden, mask), [[2, 3], [6, 7]])
    assert np.allclose(cls_pool(hidden, mask), [[0, 1], [6, 7]])
    assert np.allclose(weighted_mean_pool(hidden, mask), [[(0 + 2 * 2) / 3, (1 + 3 * 2) / 3], [6, 7]])
    assert np.allclose(mean_sqrt_len_pool(hidden, mask), [[2 / np.sqrt(2), 4 / np.sqrt(2)], [6, 7]])
    assert np.allclose(last_token_pool(hidden, mask), [[2, 3], [6, 7]])


# Every mode unnormalized; normalization is mode-independent, so two modes cover it.
CASES = [(mode, False) for mode in POOLING_MODES] + [("mean", True), ("cls", True)]


@pytest.mark.parametrize("mode, normalize", CASES)
def test_pooling_mode_matches_reference(mode, normalize, tiny_bert, hidden, tmp_path):
    out = tmp_path / mode
    export_model(ExportOptions(model=str(tiny_bert), out_dir=str(out), pooling=mode, normalize=normalize, last_k=2),
                 log=lambda _m: None)
    got = Embedder(out, device="cpu").encode(TEXTS)
    want = _reference(mode, *hidden)
    if normalize:
        want = want / np.linalg.norm(want, axis=1, keepdims=True)
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-4
