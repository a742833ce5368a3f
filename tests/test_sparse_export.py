"""engine export of SPLADE sparse encoders: the CLI summary and manifest, the inference-free query weights, a bare
*ForMaskedLM folder (an embedder unless --pooling splade), the options a sparse encoder refuses, a folder without an
MLM head, the parity gate failing, and the wrong task refused both ways."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from engine import Embedder, Reranker, SparseEncoder
from engine.cli import main
from engine.errors import ConfigError, ModelFolderError
from export import ExportOptions, ParityError, export_model, read_manifest

QUIET = {"log": lambda _m: None}


def test_cli_export_of_a_sparse_encoder_writes_its_manifest(tiny_sparse_encoders, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["export", str(tiny_sparse_encoders["bert-max"]), str(out)])
    assert result.exit_code == 0, result.output
    assert "sparse encoder SPLADE max relu vocabulary=400 query=document" in result.output
    assert "parity sparse/sparse_embedding:" in result.output and "pattern_mismatches=0" in result.output
    m = read_manifest(out)
    assert (m["task"], m["input"], m["graph"]) == ("sparse", "text", "sparse.onnx")
    assert m["head_outputs"] == {"sparse": "sparse_embedding"} and m["outputs"] == {"sparse.onnx": ["sparse_embedding"]}
    assert m["vocab_size"] == m["embedding_dim"] == 400
    assert m["splade"] == {"pooling": "max", "activation": "relu"} and m["query"] == {"kind": "document"}
    assert m["max_active_dims"] is None and m["similarity_fn_name"] == "dot" and m["sparse_from"] == "sentence-transformers"
    entry = m["parity"]["sparse"]["outputs"]["sparse_embedding"]
    assert m["valid"] and entry["max_abs"] <= 1e-4 and entry["pattern_mismatches"] == 0
    assert 1 <= entry["active_dims"][1] <= 40  # a few percent of the vocabulary, as real SPLADE
    assert m["parity"]["sparse"]["batch_sizes"] == [1, 7, 32] and m["parity"]["sparse"]["token_lengths"][0] == 1
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "sparse.onnx", "tokenizer.json", "tokenizer_config.json"]


def test_sum_pooling_and_distilbert(tiny_sparse_exports):
    assert read_manifest(tiny_sparse_exports["bert-sum"])["splade"]["pooling"] == "sum"
    m = read_manifest(tiny_sparse_exports["distilbert-max"])
    assert m["architecture"] == "distilbert" and m["inputs"] == ["input_ids", "attention_mask"]


def test_inference_free_query_weights_are_shipped(tiny_sparse_encoders, tiny_sparse_exports):
    from safetensors.numpy import load_file

    out = tiny_sparse_exports["bert-inference-free"]
    m = read_manifest(out)
    assert m["query"] == {"kind": "static", "weights": "query_weights.npy", "special_tokens": False,
                          "pooling": "token-weight", "max_length": 64}
    want = load_file(str(tiny_sparse_encoders["bert-inference-free"] / "query_0_SparseStaticEmbedding" / "model.safetensors"))
    got = np.load(out / "query_weights.npy")
    assert got.dtype == np.float32 and np.array_equal(got, want["weight"]) and "query_weights.npy" in m["files"]


def test_max_active_dims_of_the_folder_is_recorded(tiny_models, tmp_path):
    from benchmarks.random_sparse_encoders import sparse_encoder_from_encoder

    folder = sparse_encoder_from_encoder(tiny_models["bert"], tmp_path / "k8", max_active_dims=8)
    m = export_model(ExportOptions(model=str(folder), out_dir=str(tmp_path / "out")), **QUIET)
    assert m["max_active_dims"] == 8
    enc = SparseEncoder(tmp_path / "out", device="cpu")
    assert enc.max_active_dims == 8
    rows = enc.encode_sparse(["Exceptions propagate up the call stack until a handler catches them."] * 2)
    assert all(len(i) == 8 for i, _ in rows)


def _bare_mlm(tiny_sparse_encoders, tmp_path):
    """The bert-max SparseEncoder's MLM without the sentence-transformers layout: a plain BertForMaskedLM folder."""
    folder = tmp_path / "bare-mlm"
    shutil.copytree(tiny_sparse_encoders["bert-max"], folder)
    for name in ("modules.json", "config_sentence_transformers.json", "sentence_bert_config.json", "README.md"):
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder / "1_SpladePooling")
    return folder


def test_a_bare_masked_lm_is_an_embedder_unless_pooling_splade(tiny_sparse_encoders, tmp_path):
    folder = _bare_mlm(tiny_sparse_encoders, tmp_path)
    assert json.loads((folder / "config.json").read_text())["architectures"] == ["BertForMaskedLM"]
    assert export_model(ExportOptions(model=str(folder), out_dir=str(tmp_path / "embed")), **QUIET)["task"] == "embed"
    result = CliRunner().invoke(main, ["export", str(folder), str(tmp_path / "sparse"), "--pooling", "splade"])
    assert result.exit_code == 0, result.output
    m = read_manifest(tmp_path / "sparse")
    assert m["task"] == "sparse" and m["sparse_from"] == "--pooling splade" and m["splade"] == {"pooling": "max", "activation": "relu"}
    # the same graph as the SparseEncoder folder's (it is the same model with the same pooling)
    a = SparseEncoder(tmp_path / "sparse", device="cpu").encode_sparse(["A function returns a value."])
    st = export_model(ExportOptions(model=str(tiny_sparse_encoders["bert-max"]), out_dir=str(tmp_path / "st")), **QUIET)
    b = SparseEncoder(tmp_path / "st", device="cpu").encode_sparse(["A function returns a value."])
    assert st["task"] == "sparse" and np.array_equal(a[0][0], b[0][0]) and np.abs(a[0][1] - b[0][1]).max() <= 1e-6


def test_splade_needs_a_masked_lm_head(tiny_models, tmp_path):
    result = CliRunner().invoke(main, ["export", str(tiny_models["bert"]), str(tmp_path / "o"), "--pooling", "splade"])
    assert result.exit_code == 2 and "--pooling splade needs a masked-language-model head" in result.output
    assert "BertModel" in result.output and not (tmp_path / "o").exists()


@pytest.mark.parametrize("flags", [["--normalize"], ["--token-embeddings"], ["--pooling", "mean"], ["--last-k", "2"]])
def test_embedding_options_are_refused_for_a_sparse_encoder(tiny_sparse_encoders, tmp_path, flags):
    result = CliRunner().invoke(main, ["export", str(tiny_sparse_encoders["bert-max"]), str(tmp_path / "o"), *flags])
    assert result.exit_code == 2 and "SPLADE sparse encoder" in result.output and flags[0] in result.output
    assert not (tmp_path / "o").exists()


def test_a_parity_miss_fails_the_export_and_marks_it_invalid(tiny_sparse_encoders, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ParityError, match="sparse_embedding: max abs diff .* > 0"):
        export_model(ExportOptions(model=str(tiny_sparse_encoders["bert-max"]), out_dir=str(out), atol=0.0), **QUIET)
    m = read_manifest(out, require_valid=False)
    assert m["valid"] is False and m["task"] == "sparse"
    with pytest.raises(ModelFolderError, match="failed parity validation"):
        SparseEncoder(out, device="cpu")


def test_the_wrong_task_is_refused_both_ways(tiny_sparse_exports, tiny_sparse_encoders, tiny_models, tmp_path):
    from benchmarks.random_cross_encoders import cross_encoder_from_encoder

    sparse = tiny_sparse_exports["bert-max"]
    with pytest.raises(ConfigError, match="is a sparse encoder .task 'sparse'.*cannot embed text"):
        Embedder(sparse, device="cpu")
    with pytest.raises(ConfigError, match="is a sparse encoder .task 'sparse'.*cannot score text pairs"):
        Reranker(sparse, device="cpu")
    with pytest.raises(ConfigError, match="is a sparse encoder"):  # the folder, before any export runs
        Embedder(tiny_sparse_encoders["bert-inference-free"], device="cpu", cache_dir=str(tmp_path / "cache"))
    embed = tmp_path / "embed"
    export_model(ExportOptions(model=str(tiny_models["bert"]), out_dir=str(embed)), **QUIET)
    with pytest.raises(ConfigError, match="is an embedding model .task 'embed'.*cannot encode sparse vectors"):
        SparseEncoder(embed, device="cpu")
    with pytest.raises(ConfigError, match="is an embedding model.*needs a SPLADE model"):  # a BertModel folder
        SparseEncoder(tiny_models["bert"], device="cpu", cache_dir=str(tmp_path / "cache"))
    ce = cross_encoder_from_encoder(tiny_models["bert"], tmp_path / "ce")
    with pytest.raises(ConfigError, match="is a reranker .task 'rerank'.*cannot encode sparse vectors"):
        SparseEncoder(ce, device="cpu", cache_dir=str(tmp_path / "cache"))
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_int8_sparse_gate_fails_and_passes_by_its_threshold(tiny_sparse_encoders, tmp_path):
    folder = str(tiny_sparse_encoders["bert-max"])
    m = export_model(ExportOptions(model=folder, out_dir=str(tmp_path / "int8"), precision="int8"), **QUIET)
    entry = m["parity"]["sparse"]["outputs"]["sparse_embedding"]
    assert m["valid"] and entry["min_cos"] >= 0.98 and 0.8 <= entry["top_k_overlap"] < 1.0 and "quantization" in m
    assert m["parity"]["sparse"]["thresholds"] == {"precision": "int8", "atol": None, "min_cos": 0.98, "min_overlap": 0.8,
                                                   "pattern": False}
    with pytest.raises(ParityError, match="top-32 active-dimension overlap .* < 1.0"):
        export_model(ExportOptions(model=folder, out_dir=str(tmp_path / "strict"), precision="int8", min_overlap=1.0), **QUIET)
