"""Issue 17, bad options and damaged model folders: one validation each, clear errors, no tracebacks
(items 7, 8, 12, 13, 15, 16, 17, 21)."""
from __future__ import annotations

import json
import os
import shutil
import tracemalloc

import pytest
from click.testing import CliRunner

from engine import Embedder, EmbedderConfig
from engine.cli import main
from engine.errors import ConfigError, InputError, ModelFolderError
from engine.inspect.selection import select_indices
from export import ExportOptions, ModelSourceError, OptionError


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("value", [1, 0, -1])
def test_item7_max_length_below_2_is_refused_everywhere(value, minilm_export, tiny_models, tmp_path):
    with pytest.raises(ConfigError, match=f"max_length must be at least 2, got {value}"):
        Embedder(minilm_export, max_length=value)
    src = tmp_path / "in.txt"
    src.write_text("a text\n")
    r = cli("embed", src, tmp_path / "out", "--model", minilm_export, "--max-length", value)
    assert r.exit_code == 2
    r = cli("export", tiny_models["bert"], tmp_path / "e", "--max-length", value)
    assert r.exit_code == 2 and f"--max-length {value} is out of range" in r.output
    with pytest.raises(OptionError, match="is out of range"):
        ExportOptions(model=str(tiny_models["bert"]), out_dir=str(tmp_path / "e"), max_length=value)
    assert not (tmp_path / "e").exists()


def test_item7_chunking_needs_room_in_the_config():
    with pytest.raises(ConfigError, match="at least 3"):
        EmbedderConfig(long_text="chunk", max_length=2)
    with pytest.raises(ConfigError, match="chunk_stride 30 must be below max_length 32"):
        EmbedderConfig(long_text="chunk", max_length=32, chunk_stride=30)
    assert EmbedderConfig(long_text="chunk", max_length=32, chunk_stride=29).chunk_stride == 29


@pytest.mark.parametrize("flag", ["--atol", "--min-cos"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_item8_non_finite_parity_thresholds_are_refused(flag, value, tiny_models, tmp_path):
    r = cli("export", tiny_models["bert"], tmp_path / "e", flag, value)
    assert r.exit_code == 2 and "must be a finite number" in r.output, r.output
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("opset", [5, 12, 24, 99])
def test_item15_unsupported_opsets_are_refused_up_front(opset, tiny_models, tmp_path):
    r = cli("export", tiny_models["bert"], tmp_path / "e", "--opset", opset)
    assert r.exit_code == 2 and f"--opset {opset} is not supported; choose 13..23" in r.output
    assert r.stdout == "" and not (tmp_path / "e").exists()


def _damaged(tiny_exports, tmp_path, how: str):
    folder = tmp_path / "export"
    shutil.copytree(tiny_exports["bert"], folder)
    graph = folder / "embed.onnx"
    data = graph.read_bytes()
    graph.write_bytes(data[: len(data) // 2] if how == "truncated" else bytes(len(data)))
    return folder


def test_item12_a_truncated_graph_is_named_by_its_size(tiny_exports, tmp_path):
    folder = _damaged(tiny_exports, tmp_path, "truncated")
    with pytest.raises(ModelFolderError, match=r"embed.onnx is \d+ bytes, but manifest.json records \d+; the export is damaged"):
        Embedder(folder, device="cpu")
    src = tmp_path / "in.txt"
    src.write_text("a text\n")
    r = cli("embed", src, tmp_path / "out", "--model", folder)
    assert r.exit_code == 1 and "embed.onnx" in r.output and "re-export" in r.output


def test_item12_a_same_size_corrupt_graph_is_named_by_its_hash(tiny_exports, tmp_path):
    folder = _damaged(tiny_exports, tmp_path, "zeroed")
    with pytest.raises(ModelFolderError, match="embed.onnx does not match the sha256 in manifest.json"):
        Embedder(folder, device="cpu")


def _st_copy(tiny_st_model, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_st_model, folder)
    return folder


@pytest.mark.parametrize("file,content,message", [
    ("modules.json", "{not json", "cannot read .*modules.json.*must be valid JSON"),
    ("modules.json", '{"a": 1}', "modules.json holds a JSON dict, not an array"),
    ("modules.json", '[1, 2]', "modules.json: entry 0 is not an object"),
    ("sentence_bert_config.json", '["x"]', "sentence_bert_config.json holds a JSON list, not an object"),
    ("sentence_bert_config.json", '{"max_seq_length": "long"}', "max_seq_length 'long' is not an integer"),
    ("1_Pooling/config.json", "[]", "config.json holds a JSON list, not an object"),
    ("1_Pooling/config.json", '{"pooling_mode": 5}', "pooling_mode 5 is not a name"),
    ("config.json", "[1, 2]", "config.json holds a JSON list, not an object"),
    ("config.json", "\xff", "must be valid JSON"),
])
def test_item13_malformed_metadata_is_a_clear_error(file, content, message, tiny_st_model, tmp_path):
    folder = _st_copy(tiny_st_model, tmp_path)
    (folder / file).write_text(content, encoding="latin-1")
    with pytest.raises(ModelSourceError, match=message):
        from export import export_model

        export_model(ExportOptions(model=str(folder), out_dir=str(tmp_path / "e")), log=lambda _m: None)
    with pytest.raises(ModelFolderError, match=message):
        Embedder(folder, cache_dir=str(tmp_path / "cache"))
    src = tmp_path / "in.txt"
    src.write_text("a text\n")
    r = cli("embed", src, tmp_path / "out", "--model", folder, "--cache-dir", tmp_path / "cache")
    assert r.exit_code == 1 and file.rsplit("/", 1)[-1] in r.output


def test_item13_a_manifest_that_is_not_an_object(tiny_exports, tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(tiny_exports["bert"], folder)
    (folder / "manifest.json").write_text("[]")
    with pytest.raises(ModelFolderError, match="manifest.json holds a JSON list, not an object"):
        Embedder(folder)


def test_item16_inspect_out_that_cannot_be_written(tiny_exports, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = cli("inspect", "a text", "--model", tiny_exports["bert"], "--out", blocker)
    assert r.exit_code == 2 and "is a file" in r.output  # click's own check
    r = cli("inspect", "a text", "--model", tiny_exports["bert"], "--out", blocker / "sub")
    assert r.exit_code == 1 and f"--out {blocker / 'sub'} cannot be written" in r.output, r.output
    if os.geteuid() != 0:  # root writes into read-only folders
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        r = cli("inspect", "a text", "--model", tiny_exports["bert"], "--out", locked)
        assert r.exit_code == 1 and "cannot be written" in r.output


def test_item17_inspect_max_length_minus_1_is_a_usage_error(tiny_exports, tmp_path):
    r = cli("inspect", "a text", "--model", tiny_exports["bert"], "--out", tmp_path / "o", "--max-length", -1)
    assert r.exit_code == 2 and "max_length must be at least 2, got -1" in r.output


def test_item21_a_huge_layer_range_is_refused_without_building_it(tiny_exports, tmp_path):
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="layer 30000000 is out of range; the model has 6 layers"):
            select_indices("0-30000000", 6, "layer")
        assert tracemalloc.get_traced_memory()[1] < 1 << 20
    finally:
        tracemalloc.stop()
    r = cli("inspect", "a text", "--model", tiny_exports["bert"], "--out", tmp_path / "o", "--layers", "0-30000000")
    assert r.exit_code == 1 and "layer 30000000 is out of range" in r.output
    assert select_indices("1-2,last", 6, "layer") == [1, 2, 5]
