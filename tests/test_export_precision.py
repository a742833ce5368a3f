"""fp16 and int8 lowering: I/O types, what stays fp32, measured loss in the manifest, failures, large-model layout."""
from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest

from conftest import cpu_session
from export import ExportOptions, ParityError, export_model, read_manifest
from export.precision import FP16_KEEP_FP32
from export.devices import gpu_visible

QUIET = {"log": lambda _m: None}


def _manifest(folder) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    values = list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
    out = {v.name: v.type.tensor_type.elem_type for v in values}
    out.update({t.name: t.data_type for t in model.graph.initializer})
    return out


@pytest.fixture(scope="module")
def fp16_export(tiny_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("fp16") / "bert-mean-l2"
    export_model(ExportOptions(model=str(tiny_models["bert"]), out_dir=str(out), precision="fp16", pooling="mean",
                               normalize=True, token_embeddings=True), **QUIET)
    return out


def test_fp16_keeps_int64_inputs_fp32_outputs_and_fp32_reductions(fp16_export):
    model = onnx.load(str(fp16_export / "embed.onnx"))
    assert {i.type.tensor_type.elem_type for i in model.graph.input} == {onnx.TensorProto.INT64}
    assert {o.type.tensor_type.elem_type for o in model.graph.output} == {onnx.TensorProto.FLOAT}
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)  # the weights are fp16
    types = _types(model)
    kept = [n for n in model.graph.node if n.op_type in FP16_KEEP_FP32]
    assert {n.op_type for n in kept} >= {"ReduceSum", "Div"}  # mean pooling and L2 normalization are in the graph
    for node in kept:
        float_inputs = [types[i] for i in node.input if i and types.get(i) in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)]
        assert set(float_inputs) <= {onnx.TensorProto.FLOAT}, (node.op_type, node.name, float_inputs)


def test_fp16_parity_recorded_and_within_threshold(fp16_export):
    m = _manifest(fp16_export)
    assert m["valid"] and m["precision"] == "fp16"
    embed = m["parity"]["embed"]
    assert embed["thresholds"]["min_cos"] == 0.999
    for o in embed["outputs"].values():
        assert o["finite"] and o["min_cos"] >= 0.999 and o["failures"] == []
    assert m["parity"]["inspect"]["thresholds"]["atol"] == 1e-4  # inspect.onnx stays fp32
    if embed["provider"] == "CPUExecutionProvider":  # no GPU here, or onnxruntime could not load CUDA: said in notes
        assert any("validated on CPU" in n for n in m["notes"])
    else:
        assert embed["provider"] == "CUDAExecutionProvider" and gpu_visible()
        assert not any("validated on CPU" in n for n in m["notes"])
    if not gpu_visible():
        assert embed["provider"] == "CPUExecutionProvider"


def test_fp16_non_finite_output_fails_validation(tiny_models, tmp_path):
    """FFN weights of ~2e5 are finite in fp32 (LayerNorm rescales the sum) but overflow fp16 (max 65504)."""
    import torch
    from transformers import AutoModel

    folder = tmp_path / "bert-huge"
    shutil.copytree(tiny_models["bert"], folder)
    model = AutoModel.from_pretrained(folder)
    with torch.no_grad():
        for layer in model.encoder.layer:
            layer.output.dense.weight.mul_(1e7)
    model.save_pretrained(folder)
    assert export_model(ExportOptions(model=str(folder), out_dir=str(tmp_path / "fp32")), **QUIET)["valid"]
    with pytest.raises(ParityError, match="sentence_embedding: non-finite values") as err:
        export_model(ExportOptions(model=str(folder), out_dir=str(tmp_path / "fp16"), precision="fp16"), **QUIET)
    assert err.value.report["embed"]["outputs"]["sentence_embedding"]["finite"] is False
    m = _manifest(tmp_path / "fp16")
    assert m["valid"] is False and m["parity"]["embed"]["pass"] is False
    with pytest.raises(Exception, match="not marked valid"):
        read_manifest(tmp_path / "fp16")


def test_int8_minilm_records_measured_loss(minilm_export_int8, minilm_export):
    m, m32 = _manifest(minilm_export_int8), _manifest(minilm_export)
    assert m["valid"] and m["precision"] == "int8"
    o = m["parity"]["embed"]["outputs"]["sentence_embedding"]
    assert m["parity"]["embed"]["thresholds"]["mean_cos"] == 0.995
    assert 0.99 <= o["mean_cos"] < 1.0 and o["min_cos"] <= o["mean_cos"] and o["max_abs"] > 0
    ops = {n.op_type for n in onnx.load(str(minilm_export_int8 / "embed.onnx")).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    assert m["fused_ops"] == m32["fused_ops"]  # quantization keeps the fused ops
    size8, size32 = (minilm_export_int8 / "embed.onnx").stat().st_size, (minilm_export / "embed.onnx").stat().st_size
    assert size8 < 0.6 * size32  # int8 weights, plus fp32 copies of the FFN weights for the first token's row
    # inspect.onnx is the same fp32 graph whatever the embed precision
    assert m["files"]["inspect.onnx"] == m32["files"]["inspect.onnx"]


def test_int8_minilm_embeddings_close_to_fp32(minilm_export_int8, minilm_export, real_texts):
    from transformers import AutoTokenizer

    texts = real_texts[100:132]
    enc = AutoTokenizer.from_pretrained(minilm_export)(texts, truncation=True, max_length=256, padding=True, return_tensors="np")
    feed = {k: enc[k].astype(np.int64) for k in ("input_ids", "token_type_ids", "attention_mask")}
    (a,) = cpu_session(minilm_export / "embed.onnx").run(["sentence_embedding"], feed)
    (b,) = cpu_session(minilm_export_int8 / "embed.onnx").run(["sentence_embedding"], feed)
    cos = (a * b).sum(1)  # both are L2-normalized in-graph
    assert cos.mean() >= 0.99 and cos.min() >= 0.95


@pytest.mark.parametrize("arch", ["xlm-roberta", "mpnet"])
def test_int8_tiny_models(arch, tiny_models, tmp_path):
    m = export_model(ExportOptions(model=str(tiny_models[arch]), out_dir=str(tmp_path / "o"), precision="int8"), **QUIET)
    assert m["valid"] and m["parity"]["embed"]["outputs"]["sentence_embedding"]["mean_cos"] >= 0.99


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_large_models_use_one_external_data_file_per_graph(precision, tiny_models, tmp_path, monkeypatch):
    """Above ~2 GB of weights the graphs keep weights in '<graph>.data'; forced here by lowering the limit."""
    import export.api

    monkeypatch.setattr(export.api, "TWO_GB", 1000)
    out = tmp_path / "o"
    m = export_model(ExportOptions(model=str(tiny_models["bert"]), out_dir=str(out), precision=precision), **QUIET)
    assert m["valid"]
    names = sorted(p.name for p in out.iterdir())
    assert names == ["embed.onnx", "embed.onnx.data", "inspect.onnx", "inspect.onnx.data", "manifest.json",
                     "tokenizer.json", "tokenizer_config.json"]
    assert set(m["files"]) == set(names) - {"manifest.json"}
    for graph in ("embed.onnx", "inspect.onnx"):
        model = onnx.load(str(out / graph), load_external_data=False)
        locations = {e.value for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
                     for e in t.external_data if e.key == "location"}
        assert locations == {graph + ".data"}
    assert not list(tmp_path.glob(".o.partial-*"))
