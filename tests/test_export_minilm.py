"""The bundled all-MiniLM-L6-v2 export (session fixture): fully fused, validated, and equal to PyTorch at every shape."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from conftest import cpu_session, torch_threads
from export.manifest import sha256_file
from export.source import hash_folder


@pytest.fixture(scope="module")
def manifest(minilm_export) -> dict:
    return json.loads((minilm_export / "manifest.json").read_text())


def test_manifest(manifest, minilm_path, minilm_export):
    m = manifest
    assert m["valid"] is True and m["format_version"] == 1
    assert (m["architecture"], m["layers"], m["hidden_size"], m["heads"], m["vocab_size"]) == ("bert", 6, 384, 12, 30522)
    assert (m["pooling"], m["normalize"], m["max_length"], m["embedding_dim"]) == ("mean", True, 256, 384)
    assert m["inputs"] == ["input_ids", "token_type_ids", "attention_mask"]
    assert m["outputs"] == {"embed.onnx": ["sentence_embedding", "token_embeddings"], "inspect.onnx": ["last_hidden_state", "hidden_states", "attentions"]}
    assert (m["precision"], m["opset"], m["pad_token_id"]) == ("fp32", 17, 0)
    assert m["source"]["content_hash"] == hash_folder(minilm_path) and m["source"]["revision"] is None
    assert all(m["files"][p.name] == sha256_file(p) for p in minilm_export.iterdir() if p.name != "manifest.json")
    assert m["export_seconds"] > 0 and m["created_at"].endswith("Z")


def test_fully_fused(manifest):
    assert manifest["fused_ops"] == {"EmbedLayerNormalization": 1, "Attention": 6, "SkipLayerNormalization": 12, "BiasGelu": 6}
    assert manifest["attention_fused"] is True and manifest["notes"] == []


def test_parity_report(manifest):
    embed, inspect = manifest["parity"]["embed"], manifest["parity"]["inspect"]
    assert embed["token_lengths"] == inspect["token_lengths"] == [1, 256]
    assert embed["provider"] == inspect["provider"] == "CPUExecutionProvider"
    assert embed["outputs"]["sentence_embedding"]["max_abs"] <= 1e-4
    assert embed["outputs"]["sentence_embedding"]["min_cos"] >= 0.99999
    assert inspect["outputs"]["hidden_states"]["max_abs"] <= 1e-4 and len(inspect["outputs"]["hidden_states"]["max_abs_per_layer"]) == 7
    assert inspect["outputs"]["attentions"]["max_abs"] <= 1e-5 and len(inspect["outputs"]["attentions"]["max_abs_per_layer"]) == 6


def test_graph_axes_are_dynamic(minilm_export):
    for graph in ("embed.onnx", "inspect.onnx"):
        model = onnx.load(str(minilm_export / graph), load_external_data=False)
        for i in model.graph.input:
            assert [d.dim_param for d in i.type.tensor_type.shape.dim] == ["batch", "sequence"]


@pytest.mark.parametrize("lengths", [[1], [256], [int(x) for x in np.linspace(1, 256, 33)], [7, 130, 2]],
                         ids=["b1-t1", "b1-t256", "b33-t1..256", "b3"])
def test_embed_and_inspect_match_pytorch(lengths, minilm_export, minilm_path, manifest, real_texts, export_helpers):
    rows = export_helpers.rows_of_lengths(minilm_export, real_texts, lengths)
    feed = export_helpers.pad_rows(rows, manifest["inputs"], 0)
    (emb,) = cpu_session(minilm_export / "embed.onnx").run(["sentence_embedding"], feed)
    wants = export_helpers.reference(minilm_path)(rows, with_token_types=True)
    inspect = cpu_session(minilm_export / "inspect.onnx").run(None, feed) if len(rows) <= 3 else None
    for i, want in enumerate(wants):
        mean = want["last_hidden_state"].astype(np.float64).mean(0)
        np.testing.assert_allclose(emb[i], mean / np.linalg.norm(mean), atol=1e-5, err_msg=f"row {i} length {lengths[i]}")
        if inspect is not None:
            last, hidden, attn = inspect
            t = lengths[i]
            assert hidden.shape[0] == 7 and attn.shape[:3] == (6, len(rows), 12)
            np.testing.assert_allclose(last[i, :t], want["last_hidden_state"], atol=1e-4)
            np.testing.assert_allclose(hidden[:, i, :t], want["hidden_states"], atol=1e-4)
            np.testing.assert_allclose(attn[:, i, :, :t, :t], want["attentions"], atol=1e-5)


def test_matches_sentence_transformers_encode(minilm_export, minilm_path, manifest, real_texts):
    """sentence-transformers' own pipeline (tokenizer, truncation at 256, mean pooling, Normalize) as reference."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    texts = real_texts[:40:3] + ["", "Hi", " ".join(real_texts[:30])]  # includes one text far past 256 tokens
    with torch_threads(1):
        want = SentenceTransformer(str(minilm_path), device="cpu").encode(texts, batch_size=8, convert_to_numpy=True)
    enc = AutoTokenizer.from_pretrained(minilm_export)(texts, truncation=True, max_length=256, padding=True, return_tensors="np")
    (got,) = cpu_session(minilm_export / "embed.onnx").run(["sentence_embedding"], {k: enc[k].astype(np.int64) for k in manifest["inputs"]})
    assert enc["attention_mask"].sum(1).max() == 256
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert ((got * want).sum(1) >= 0.99999).all()
