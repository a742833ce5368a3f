"""Every supported architecture exports, fuses where onnxruntime can, and matches PyTorch at every shape."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from conftest import TINY_ARCHITECTURES, TINY_MAX_LENGTH, cpu_session
from export import ExportOptions, export_model
from export.fusion import count_ops
from export.manifest import sha256_file
from export.source import hash_folder

# batch size -> token lengths of its rows; together: batch 1 to 33, sequence 1 to max_length, every row padded somewhere
SHAPES = {
    "b1-t1": [1],
    "b1-tmax": [TINY_MAX_LENGTH],
    "b2": [1, 2],
    "b7": [5, 64, 1, 17, 33, 2, 48],
    "b33": [int(x) for x in np.linspace(1, TINY_MAX_LENGTH, 33)],
}


def _manifest(folder) -> dict:
    return json.loads((folder / "manifest.json").read_text())


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_manifest_describes_the_export(arch, tiny_exports, tiny_models):
    m = _manifest(tiny_exports[arch])
    assert m["valid"] is True
    assert m["architecture"] == arch
    assert (m["layers"], m["hidden_size"], m["heads"], m["vocab_size"], m["embedding_dim"]) == (3, 32, 4, 400, 32)
    # no sentence-transformers metadata: CLS pooling, no normalization, every position the model has
    assert (m["pooling"], m["normalize"], m["max_length"], m["defaults_from"]) == ("cls", False, TINY_MAX_LENGTH, "architecture")
    uses_token_types = arch in ("bert", "electra")
    assert m["inputs"] == (["input_ids", "token_type_ids", "attention_mask"] if uses_token_types else ["input_ids", "attention_mask"])
    assert m["outputs"] == {"embed.onnx": ["sentence_embedding", "token_embeddings"],
                            "inspect.onnx": ["last_hidden_state", "hidden_states", "attentions"]}
    assert m["precision"] == "fp32" and m["opset"] == 17
    assert set(m["tool_versions"]) == {"embedding-engine", "torch", "transformers", "onnx", "onnxruntime"}
    assert m["source"]["content_hash"] == hash_folder(tiny_models[arch])
    assert m["source"]["path"] == str(tiny_models[arch].resolve())
    assert m["files"] == {p.name: sha256_file(p) for p in sorted(tiny_exports[arch].iterdir()) if p.name != "manifest.json"}
    assert {"embed.onnx", "inspect.onnx", "tokenizer.json"} <= set(m["files"])


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_parity_report_covers_every_output_within_thresholds(arch, tiny_exports):
    parity = _manifest(tiny_exports[arch])["parity"]
    assert set(parity["embed"]["outputs"]) == {"sentence_embedding", "token_embeddings"}
    assert set(parity["inspect"]["outputs"]) == {"last_hidden_state", "hidden_states", "attentions"}
    for report in parity.values():
        assert report["pass"] and report["token_lengths"] == [1, TINY_MAX_LENGTH]
        assert report["batch_sizes"] == [1, 4, 7]
        for name, o in report["outputs"].items():
            assert o["failures"] == [] and o["finite"]
            assert o["max_abs"] <= (1e-5 if name == "attentions" else 1e-4)
            assert o["min_cos"] >= 0.99999
    assert len(parity["inspect"]["outputs"]["hidden_states"]["max_abs_per_layer"]) == 4  # embeddings + 3 layers
    assert len(parity["inspect"]["outputs"]["attentions"]["max_abs_per_layer"]) == 3


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_graph_io_names_types_and_dynamic_axes(arch, tiny_exports):
    m = _manifest(tiny_exports[arch])
    for graph, outputs in m["outputs"].items():
        model = onnx.load(str(tiny_exports[arch] / graph))
        assert [i.name for i in model.graph.input] == m["inputs"]
        assert [o.name for o in model.graph.output] == outputs
        for i in model.graph.input:
            assert i.type.tensor_type.elem_type == onnx.TensorProto.INT64
            assert [d.dim_param for d in i.type.tensor_type.shape.dim] == ["batch", "sequence"]
        for o in model.graph.output:
            assert o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    shapes = {s.name: [d.dim_param or d.dim_value for d in s.type.tensor_type.shape.dim]
              for g in ("embed.onnx", "inspect.onnx") for s in onnx.load(str(tiny_exports[arch] / g)).graph.output}
    assert shapes["sentence_embedding"] == ["batch", 32]
    assert shapes["token_embeddings"] == ["batch", "sequence", 32]
    assert shapes["hidden_states"][1:3] == ["batch", "sequence"] and shapes["hidden_states"][3] == 32
    assert shapes["attentions"][1] == "batch" and shapes["attentions"][3:] == ["sequence", "sequence_k"]


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_fusion_counts_and_unfused_attention_note(arch, tiny_exports):
    m = _manifest(tiny_exports[arch])
    fused = m["fused_ops"]
    assert fused == count_ops(tiny_exports[arch] / "embed.onnx")
    assert fused.get("SkipLayerNormalization", 0) >= 2 * 3 - 1
    assert fused.get("BiasGelu", 0) + fused.get("FastGelu", 0) == 3
    if arch == "mpnet":  # relative position bias: onnxruntime's BERT optimizer leaves attention unfused
        assert not m["attention_fused"] and "Attention" not in fused
        assert any("attention did not fuse for mpnet" in n for n in m["notes"])
    else:
        assert m["attention_fused"] and fused["Attention"] == 3 and m["notes"] == []
    if arch in ("bert", "distilbert", "electra"):
        assert fused["EmbedLayerNormalization"] == 1


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_every_output_matches_pytorch_at_batch_1_to_33_and_length_1_to_max(arch, tiny_exports, tiny_models, real_texts, export_helpers):
    folder = tiny_exports[arch]
    m = _manifest(folder)
    token_types = "token_type_ids" in m["inputs"]
    embed, inspect = cpu_session(folder / "embed.onnx"), cpu_session(folder / "inspect.onnx")
    ref = export_helpers.reference(tiny_models[arch])
    for key, lengths in SHAPES.items():
        rows = export_helpers.rows_of_lengths(folder, real_texts, lengths)
        assert [len(r) for r in rows] == lengths
        feed = export_helpers.pad_rows(rows, m["inputs"], m["pad_token_id"])
        sent, tokens = embed.run(None, feed)
        last, hidden, attn = inspect.run(None, feed)
        assert sent.shape == (len(rows), 32) and hidden.shape == (4, len(rows), max(lengths), 32)
        assert attn.shape == (3, len(rows), 4, max(lengths), max(lengths))
        for i, want in enumerate(ref(rows, token_types)):
            t = lengths[i]
            np.testing.assert_allclose(sent[i], want["last_hidden_state"][0], atol=1e-4, err_msg=f"{key} row {i}")
            np.testing.assert_allclose(tokens[i, :t], want["last_hidden_state"], atol=1e-4, err_msg=f"{key} row {i}")
            np.testing.assert_allclose(last[i, :t], want["last_hidden_state"], atol=1e-4, err_msg=f"{key} row {i}")
            np.testing.assert_allclose(hidden[:, i, :t], want["hidden_states"], atol=1e-4, err_msg=f"{key} row {i}")
            np.testing.assert_allclose(attn[:, i, :, :t, :t], want["attentions"], atol=1e-5, err_msg=f"{key} row {i}")
            # padding gets no attention from real tokens
            assert np.abs(attn[:, i, :, :t, t:]).max(initial=0.0) < 1e-6


def test_token_embeddings_can_be_left_out(tiny_models, tmp_path):
    m = export_model(ExportOptions(model=str(tiny_models["roberta"]), out_dir=str(tmp_path / "e"), token_embeddings=False),
                     log=lambda _m: None)
    assert m["outputs"]["embed.onnx"] == ["sentence_embedding"]
    assert [o.name for o in onnx.load(str(tmp_path / "e" / "embed.onnx")).graph.output] == ["sentence_embedding"]
    assert set(m["parity"]["embed"]["outputs"]) == {"sentence_embedding"}
