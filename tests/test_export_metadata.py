"""Defaults come from sentence-transformers metadata when a folder has it, else from the architecture; flags override."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import cpu_session, torch_threads, write_st_layout
from export import ExportOptions, UnsupportedArchitectureError, export_model
from export.source import read_st_metadata

QUIET = {"log": lambda _m: None}


@pytest.fixture(scope="module")
def st_export(tiny_st_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("st-export") / "default"
    return export_model(ExportOptions(model=str(tiny_st_model), out_dir=str(out)), **QUIET), out


def test_st_metadata_sets_pooling_normalize_and_max_length(st_export):
    m, _out = st_export
    assert (m["pooling"], m["normalize"], m["max_length"], m["defaults_from"]) == ("max", True, 24, "sentence-transformers")
    assert m["valid"] and m["parity"]["embed"]["token_lengths"] == [1, 24]


def test_st_export_matches_sentence_transformers_encode(st_export, tiny_st_model, real_texts):
    """sentence-transformers itself (its Transformer, Pooling and Normalize modules) is the reference."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    m, out = st_export
    texts = real_texts[:12] + ["", "Hi"]
    st = SentenceTransformer(str(tiny_st_model), device="cpu")
    assert st.max_seq_length == 24
    with torch_threads(1):
        want = st.encode(texts, batch_size=5, convert_to_numpy=True)
    enc = AutoTokenizer.from_pretrained(out)(texts, truncation=True, max_length=m["max_length"], padding=True, return_tensors="np")
    feed = {name: enc[name].astype(np.int64) for name in m["inputs"]}
    (got,) = cpu_session(out / "embed.onnx").run(["sentence_embedding"], feed)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_flags_override_st_metadata(tiny_st_model, tmp_path):
    m = export_model(ExportOptions(model=str(tiny_st_model), out_dir=str(tmp_path / "o"), pooling="cls", normalize=False,
                                   max_length=40), **QUIET)
    assert (m["pooling"], m["normalize"], m["max_length"]) == ("cls", False, 40)
    assert m["defaults_from"] == "sentence-transformers"  # what the unset options would have come from
    assert m["options"]["pooling"] == "cls" and m["options"]["out_dir"] is None


def test_minilm_defaults_from_its_metadata(minilm_export):
    m = json.loads((minilm_export / "manifest.json").read_text())
    assert (m["pooling"], m["normalize"], m["max_length"], m["defaults_from"]) == ("mean", True, 256, "sentence-transformers")


@pytest.mark.parametrize("config,expected", [
    ({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, "cls"),
    ({"pooling_mode_weightedmean_tokens": True}, "weighted-mean"),
    ({"embedding_dimension": 32, "pooling_mode": "cls", "include_prompt": True}, "cls"),  # sentence-transformers >= 5
    ({"embedding_dimension": 32, "pooling_mode": "weightedmean"}, "weighted-mean"),
    ({"embedding_dimension": 32, "pooling_mode": ["max"]}, "max"),
    ({"pooling_mode_lasttoken": True}, "lasttoken"),
    ({"pooling_mode_mean_sqrt_len_tokens": True}, "mean-sqrt-len"),
    # several modes concatenate in sentence-transformers' order: the flags' fixed order, or the list's own
    ({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": True, "pooling_mode_lasttoken": True}, "cls+mean+lasttoken"),
    ({"pooling_mode": ["mean", "cls"]}, "mean+cls"),
])
def test_st_pooling_config_formats(config, expected, tiny_models, tmp_path):
    folder = tmp_path / "st"
    shutil.copytree(tiny_models["bert"], folder)
    write_st_layout(folder, config, max_seq_length=None, normalize=False)
    meta = read_st_metadata(folder)
    assert (meta.pooling, meta.normalize, meta.max_length) == (expected, False, None)


@pytest.mark.parametrize("config,message", [
    ({"pooling_mode_cls_token": False}, "no pooling mode is switched on"),
    ({"pooling_mode": ["cls", "attention"]}, r"pooling mode \['attention'\] is not supported"),
    ({"pooling_mode": "mean", "include_prompt": False}, "include_prompt false"),
])
def test_unsupported_st_pooling_is_refused_with_the_fix(config, message, tiny_models, tmp_path):
    folder = tmp_path / "st"
    shutil.copytree(tiny_models["bert"], folder)
    write_st_layout(folder, config, max_seq_length=None, normalize=False)
    with pytest.raises(UnsupportedArchitectureError, match=message):
        read_st_metadata(folder)


def test_st_max_length_falls_back_to_the_tokenizer(tiny_models, tmp_path):
    """sentence-transformers >= 5 keeps max_seq_length in the tokenizer config, not in sentence_bert_config.json."""
    folder = tmp_path / "st"
    shutil.copytree(tiny_models["distilbert"], folder)
    write_st_layout(folder, {"pooling_mode": "mean"}, max_seq_length=None, normalize=True)
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg | {"model_max_length": 20}))
    m = export_model(ExportOptions(model=str(folder), out_dir=str(tmp_path / "o")), **QUIET)
    assert (m["pooling"], m["normalize"], m["max_length"]) == ("mean", True, 20)


def test_prompts_from_st_config_reach_the_manifest(tiny_models, tmp_path):
    folder = tmp_path / "st"
    shutil.copytree(tiny_models["mpnet"], folder)
    write_st_layout(folder, {"pooling_mode_mean_tokens": True}, max_seq_length=32, normalize=True)
    (folder / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {"query": "query: ", "document": "passage: "}, "default_prompt_name": "query"}))
    m = export_model(ExportOptions(model=str(folder), out_dir=str(tmp_path / "o")), **QUIET)
    assert m["prompts"] == {"query": "query: ", "document": "passage: "} and m["default_prompt_name"] == "query"
    assert (m["pooling"], m["max_length"]) == ("mean", 32)


def test_unknown_st_module_is_refused(tiny_models, tmp_path):
    folder = tmp_path / "st"
    shutil.copytree(tiny_models["bert"], folder)
    write_st_layout(folder, {"pooling_mode": "mean"}, max_seq_length=None, normalize=False)
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 2, "name": "2", "path": "2_LSTM", "type": "sentence_transformers.models.LSTM"})
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(UnsupportedArchitectureError, match="'LSTM' is not supported"):
        read_st_metadata(folder)


def test_dense_before_pooling_is_refused(tiny_models, tmp_path):
    folder = tmp_path / "st"
    shutil.copytree(tiny_models["bert"], folder)
    write_st_layout(folder, {"pooling_mode": "mean"}, max_seq_length=None, normalize=True)
    (folder / "3_Dense").mkdir()
    (folder / "3_Dense" / "config.json").write_text(json.dumps({"in_features": 32, "out_features": 8}))
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules))  # Pooling -> Normalize -> Dense
    with pytest.raises(UnsupportedArchitectureError, match="Pooling -> Normalize -> Dense"):
        read_st_metadata(folder)
