"""The two int8 recipes: the first-token rewrite is exact before quantization, int8 keeps more neighbours than
int8-fast on real text, the manifest says which recipe ran, and the neighbour-overlap threshold fails a bad export."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from conftest import cpu_session
from export import ExportOptions, ParityError, export_model
from export.int8 import first_token_ffn_fp32, to_int8, vnni_cpu
from export.parity_texts import parity_texts
from export.validate import neighbour_overlap

QUIET = {"log": lambda _m: None}


def _feed(export, texts, max_length: int = 256):
    from transformers import AutoTokenizer

    enc = AutoTokenizer.from_pretrained(export)(texts, truncation=True, max_length=max_length, padding=True, return_tensors="np")
    assert (enc["attention_mask"] == 0).any()  # the batch really pads
    return {k: enc[k].astype(np.int64) for k in ("input_ids", "token_type_ids", "attention_mask")}


def _embed(graph, feed) -> np.ndarray:
    (out,) = cpu_session(graph).run(["sentence_embedding"], feed)
    return out  # (B, D) float32, L2-normalized in-graph


def test_first_token_rewrite_is_exact_in_fp32(minilm_export, real_texts, tmp_path):
    """Before quantization the rewritten graph computes the same function: the first token's fp32 FFN row is put back
    and padding rows never reach the pooled output."""
    model = onnx.load(str(minilm_export / "embed.onnx"))
    blocks, fp32_nodes = first_token_ffn_fp32(model)
    assert blocks == 6 and len(fp32_nodes) == 12  # one FFN per layer, two fp32 MatMuls for the first token each
    onnx.save(model, str(tmp_path / "rewritten.onnx"))
    feed = _feed(minilm_export, [""] + real_texts[40:71])  # an empty text is one row of only [CLS] [SEP]
    a, b = _embed(minilm_export / "embed.onnx", feed), _embed(tmp_path / "rewritten.onnx", feed)
    assert np.abs(a - b).max() < 1e-5


def test_graph_without_ffn_blocks_is_left_alone():
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["B", 4])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["B", 4])
    w = onnx.numpy_helper.from_array(np.eye(4, dtype=np.float32), "w")
    graph = onnx.helper.make_graph([onnx.helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [w])
    model = onnx.helper.make_model(graph)
    assert first_token_ffn_fp32(model) == (0, [])
    assert [n.op_type for n in model.graph.node] == ["MatMul"]


def test_int8_keeps_more_neighbours_than_int8_fast(minilm_export, minilm_export_int8, real_texts, tmp_path):
    """On 160 real paragraphs (at most 64 tokens) in padded batches: the int8 recipe is closer to fp32 than int8-fast
    on every measure."""
    fast = tmp_path / "fast.onnx"
    assert to_int8(minilm_export / "embed.onnx", fast, large=False, recipe="int8-fast") == {
        "recipe": "int8-fast", "reduce_range": False, "first_token_fp32_ffn_blocks": 0}
    texts = real_texts[200:360]
    sessions = [cpu_session(g) for g in (minilm_export / "embed.onnx", minilm_export_int8 / "embed.onnx", fast)]
    outs = [[], [], []]
    for start in range(0, len(texts), 32):
        feed = _feed(minilm_export, texts[start:start + 32], max_length=64)
        for sess, out in zip(sessions, outs):
            out.append(sess.run(["sentence_embedding"], feed)[0])  # (B, D) float32, L2-normalized in-graph
    ref, safe, quick = (np.concatenate(o) for o in outs)
    cos_safe, cos_fast = (ref * safe).sum(1), (ref * quick).sum(1)
    assert cos_safe.mean() > cos_fast.mean() and cos_safe.min() > cos_fast.min()
    assert neighbour_overlap(safe, ref) > neighbour_overlap(quick, ref)


def test_int8_manifest_names_the_recipe(minilm_export_int8):
    m = json.loads((minilm_export_int8 / "manifest.json").read_text())
    assert m["quantization"] == {"recipe": "int8", "reduce_range": not vnni_cpu(), "first_token_fp32_ffn_blocks": 6}
    assert m["parity"]["embed"]["thresholds"]["min_overlap"] is None  # the overlap bar is gated on the parity texts
    texts = m["parity"]["embed_texts"]
    o = texts["outputs"]["sentence_embedding"]
    assert texts["pass"] and texts["texts"] == len(parity_texts()) == 336 and texts["thresholds"]["min_overlap"] == 0.92
    assert o["neighbours_k"] == 10 and o["neighbour_overlap"] >= 0.92 and o["min_cos"] >= 0.98 and o["mean_cos"] >= 0.995


def test_int8_fast_export_records_its_recipe(tiny_models, tmp_path):
    m = export_model(ExportOptions(model=str(tiny_models["bert"]), out_dir=str(tmp_path / "o"), precision="int8-fast"), **QUIET)
    assert m["valid"] and m["precision"] == "int8-fast" and m["quantization"]["recipe"] == "int8-fast"
    assert m["parity"]["embed_texts"]["pass"] and m["parity"]["embed_texts"]["thresholds"]["min_overlap"] == 0.87
    assert "token_embeddings" not in m["outputs"]["embed.onnx"]  # off by default for both int8 recipes
    ops = {n.op_type for n in onnx.load(str(tmp_path / "o" / "embed.onnx")).graph.node}
    assert "Where" not in ops and {"DynamicQuantizeLinear", "MatMulInteger"} <= ops


def test_neighbour_overlap_threshold_fails_the_export(tiny_models, tmp_path):
    """A quantization that reorders neighbours fails the export (here: a threshold no int8 graph can meet)."""
    with pytest.raises(ParityError, match=r"sentence_embedding on 336 parity texts: top-10 neighbour overlap 0\.\d+ < 1\.0") as err:
        export_model(ExportOptions(model=str(tiny_models["bert"]), out_dir=str(tmp_path / "o"), precision="int8",
                                   min_overlap=1.0), **QUIET)
    assert "--min-overlap" in str(err.value)


def test_neighbour_overlap_counts_shared_neighbours():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 8)).astype(np.float32)
    assert neighbour_overlap(x, x) == 1.0
    assert neighbour_overlap(x, x[::-1]) < 0.6  # unrelated rows share few neighbours
    assert neighbour_overlap(x[:1], x[:1]) == 1.0  # a single row has no neighbours to disagree on


def test_parity_texts_are_real_mixed_length_text(minilm_path):
    """The shipped gate texts: 336 unique paragraphs of Python's documentation, one line to whole pages."""
    from transformers import AutoTokenizer

    texts = parity_texts()
    assert len(texts) == len(set(texts)) == 336 and all(t.strip() == t and t for t in texts)
    lengths = [len(ids) for ids in AutoTokenizer.from_pretrained(str(minilm_path))(list(texts))["input_ids"]]
    assert min(lengths) <= 8 and sorted(lengths)[168] < 64 and sum(n > 256 for n in lengths) >= 20


def test_fp32_export_is_not_gated_on_parity_texts(tiny_exports):
    """fp32 keeps its one validation (max abs on 23 texts): the parity texts cost only lossy precisions."""
    m = json.loads((tiny_exports["bert"] / "manifest.json").read_text())
    assert set(m["parity"]) == {"embed", "inspect"}
