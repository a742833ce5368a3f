"""`engine export`: output folder rules, failure reports and exit codes, clear errors for bad input, determinism."""
from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from engine.cli import main
from export import (ExportOptions, ModelSourceError, OptionError, OutputExistsError, UnsupportedArchitectureError,
                    export_model, read_manifest)
from export.source import SUPPORTED_ARCHITECTURES

QUIET = {"log": lambda _m: None}


def run(*args: str):
    return CliRunner().invoke(main, ["export", *map(str, args)])


def _no_partials(parent) -> bool:
    return not [p for p in parent.iterdir() if ".partial-" in p.name]


def test_cli_export_prints_summary_and_writes_folder(tiny_models, tmp_path):
    out = tmp_path / "e"
    result = run(tiny_models["electra"], out, "--pooling", "mean", "--normalize", "--max-length", "48")
    assert result.exit_code == 0, result.output
    assert "exported electra (3 layers, hidden 32) pooling=mean normalize=True max_length=48 precision=fp32" in result.stdout
    assert "fused ops: {'EmbedLayerNormalization': 1, 'Attention': 3" in result.stdout
    for name in ("sentence_embedding", "last_hidden_state", "hidden_states", "attentions"):
        assert f"/{name}: max_abs=" in result.stdout
    m = read_manifest(out)
    assert (m["pooling"], m["normalize"], m["max_length"]) == ("mean", True, 48)
    assert {"embed.onnx", "inspect.onnx", "manifest.json", "tokenizer.json"} <= {p.name for p in out.iterdir()}


def test_cli_reports_unfused_attention(tiny_models, tmp_path):
    result = run(tiny_models["mpnet"], tmp_path / "e")
    assert result.exit_code == 0, result.output
    assert "(attention NOT fused)" in result.stdout
    assert result.stderr.count("note: attention did not fuse for mpnet") == 1


def test_non_empty_out_dir_needs_overwrite(tiny_models, tmp_path):
    out = tmp_path / "e"
    out.mkdir()
    (out / "keep.txt").write_text("someone's file")
    result = run(tiny_models["distilbert"], out)
    assert result.exit_code == 1 and "is not empty; pass --overwrite" in result.output
    assert (out / "keep.txt").read_text() == "someone's file"
    result = run(tiny_models["distilbert"], out, "--overwrite")  # not an earlier export: never deleted
    assert result.exit_code == 1 and "not an earlier export" in result.output
    assert (out / "keep.txt").read_text() == "someone's file"
    (out / "keep.txt").unlink()
    assert run(tiny_models["bert"], out).exit_code == 0
    (out / "extra.txt").write_text("beside an export")
    result = run(tiny_models["distilbert"], out, "--overwrite")
    assert result.exit_code == 0, result.output
    assert not (out / "extra.txt").exists() and read_manifest(out)["architecture"] == "distilbert"
    assert _no_partials(tmp_path)


def test_empty_out_dir_is_fine_and_a_file_is_refused(tiny_models, tmp_path):
    (tmp_path / "empty").mkdir()
    assert export_model(ExportOptions(model=str(tiny_models["bert"]), out_dir=str(tmp_path / "empty")), **QUIET)["valid"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError, match="is a file"):
        export_model(ExportOptions(model=str(tiny_models["bert"]), out_dir=str(tmp_path / "file"), overwrite=True), **QUIET)


def test_parity_miss_exits_1_names_every_failing_output_and_marks_manifest_invalid(tiny_models, tmp_path):
    out = tmp_path / "e"
    result = run(tiny_models["bert"], out, "--atol", "1e-12", "--token-embeddings")
    assert result.exit_code == 1
    assert "failed parity; manifest marked invalid" in result.stderr
    for name in ("sentence_embedding", "token_embeddings", "last_hidden_state", "hidden_states", "attentions"):
        assert f"{name}: max abs diff" in result.stderr and "> 1e-12" in result.stderr
    report = json.loads(result.stderr[result.stderr.index("{"): result.stderr.rindex("}") + 1])
    assert report["embed"]["pass"] is False and report["inspect"]["pass"] is False
    m = json.loads((out / "manifest.json").read_text())
    assert m["valid"] is False and m["options"]["atol"] == 1e-12
    with pytest.raises(ModelSourceError, match="failed parity validation and is not marked valid"):
        read_manifest(out)
    assert read_manifest(out, require_valid=False)["architecture"] == "bert"


def test_min_cos_override_fails_with_cosine_numbers(tiny_models, tmp_path):
    result = run(tiny_models["roberta"], tmp_path / "e", "--min-cos", "1.5")
    assert result.exit_code == 1
    assert "sentence_embedding: min cosine" in result.stderr and "< 1.5" in result.stderr
    assert "attentions: min cosine" in result.stderr


def test_missing_folder(tmp_path):
    result = run(tmp_path / "nope", tmp_path / "e")
    assert result.exit_code == 1 and "does not exist; pass an existing folder or a hub id" in result.output
    assert _no_partials(tmp_path)


def test_folder_without_config(tmp_path):
    (tmp_path / "empty-model").mkdir()
    result = run(tmp_path / "empty-model", tmp_path / "e")
    assert result.exit_code == 1 and "has no config.json" in result.output


def test_unreachable_hub_id_says_so():
    with pytest.raises(ModelSourceError, match="is not a local folder and could not be fetched"):
        export_model(ExportOptions(model="no-such-org-x1/no-such-model-x1", out_dir="/nonexistent/never-written"), **QUIET)


def test_unsupported_architecture_lists_supported(tmp_path):
    folder = tmp_path / "gpt2"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}))
    result = run(folder, tmp_path / "e")
    assert result.exit_code == 1
    assert "architecture 'gpt2' is not supported; supported: " + ", ".join(SUPPORTED_ARCHITECTURES) in result.output
    with pytest.raises(UnsupportedArchitectureError):
        export_model(ExportOptions(model=str(folder), out_dir=str(tmp_path / "e")), **QUIET)


@pytest.mark.parametrize("arch", ["distilbert", "electra"])
def test_pooler_on_architectures_without_one(arch, tiny_models, tmp_path):
    result = run(tiny_models[arch], tmp_path / "e", "--pooling", "pooler")
    assert result.exit_code == 2 and f"pooling 'pooler' needs a pooler layer, which {arch} has not" in result.output


def test_pooler_without_trained_weights_is_refused(tmp_path, tokenizer_texts):
    from conftest import build_tiny_model

    folder = build_tiny_model("bert", tmp_path / "bert-nopool", tokenizer_texts, pooler=False)
    with pytest.raises(OptionError, match=r"needs trained pooler weights \(pooler.dense.\*\), which .* lacks"):
        export_model(ExportOptions(model=str(folder), out_dir=str(tmp_path / "e"), pooling="pooler"), **QUIET)
    # every other mode is fine without a pooler
    assert export_model(ExportOptions(model=str(folder), out_dir=str(tmp_path / "e2"), pooling="cls"), **QUIET)["valid"]


def test_checkpoint_missing_encoder_weights_is_refused(tiny_models, tmp_path):
    from safetensors.numpy import load_file, save_file

    folder = tmp_path / "broken"
    shutil.copytree(tiny_models["bert"], folder)
    weights = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in weights.items() if ".layer.1." not in k}, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelSourceError, match=r"lacks \d+ encoder weights \(encoder.layer.1"):
        export_model(ExportOptions(model=str(folder), out_dir=str(tmp_path / "e")), **QUIET)


@pytest.mark.parametrize("flags,message", [
    (["--pooling", "last-k-mean", "--last-k", "5"], "--last-k 5 is out of range; the model has 4 hidden states (1..4)"),
    (["--pooling", "last-k-concat", "--last-k", "0"], "--last-k 0 is out of range"),
    (["--last-k", "0"], "--last-k 0 is out of range"),
    (["--max-length", "65"], "--max-length 65 is out of range for this model; it accepts 2..64 tokens"),
    (["--max-length", "1"], "--max-length 1 is out of range"),
])
def test_conflicting_flags(flags, message, tiny_models, tmp_path):
    result = run(tiny_models["bert"], tmp_path / "e", *flags)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "e").exists() and _no_partials(tmp_path)


def test_max_length_limit_accounts_for_the_padding_offset(tiny_models, tmp_path):
    """RoBERTa-style position ids start at pad_id + 1: 66 positions hold 64 tokens."""
    result = run(tiny_models["xlm-roberta"], tmp_path / "e", "--max-length", "65")
    assert result.exit_code == 2 and "it accepts 2..64 tokens" in result.output


def test_unknown_choices_are_usage_errors(tiny_models, tmp_path):
    result = run(tiny_models["bert"], tmp_path / "e", "--pooling", "median")
    assert result.exit_code == 2 and "'median' is not one of" in result.output
    result = run(tiny_models["bert"], tmp_path / "e", "--precision", "int4")
    assert result.exit_code == 2
    with pytest.raises(OptionError, match="pooling 'median' is not supported; choose one of cls, mean"):
        export_model(ExportOptions(model=str(tiny_models["bert"]), out_dir=str(tmp_path / "e"), pooling="median"), **QUIET)


def test_same_input_and_options_give_identical_graphs_and_manifest(tiny_models, tmp_path):
    def export(out):
        return export_model(ExportOptions(model=str(tiny_models["mpnet"]), out_dir=str(out), pooling="last-k-concat",
                                          last_k=2, normalize=True, precision="int8"), **QUIET)

    a, b = export(tmp_path / "a"), export(tmp_path / "b")
    for name in ("embed.onnx", "inspect.onnx", "tokenizer.json", "tokenizer_config.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    volatile = ("created_at", "export_seconds")
    assert {k: v for k, v in a.items() if k not in volatile} == {k: v for k, v in b.items() if k not in volatile}
    on_disk = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(a))
