"""Issue 23, hostile model folders at export: no vocabulary, broken Pooling modules, non-finite weights, tokenizers
past the embedding table, config sizes out of range, symbolic link loops. Each is refused before the slow steps."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine import Embedder
from engine.cli import main
from engine.cli.errors import handle_errors
from engine.errors import ModelFolderError
from export import ExportOptions, ModelSourceError, export_model


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def refused(r, *needles) -> str:
    """The CLI refused (exit 1, a message, no traceback) and the message holds every needle."""
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and "Error: " in r.output, r.output
    for needle in needles:
        assert needle in r.output, (needle, r.output)
    return r.output


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, tokenizer_texts) -> Path:
    """A tiny random BERT (hidden 32, 2 layers) with its trained WordPiece tokenizer, in Hugging Face layout."""
    from conftest import build_tiny_model

    return build_tiny_model("bert", tmp_path_factory.mktemp("hostile") / "bert", tokenizer_texts, layers=2)


@pytest.fixture
def model(tiny_bert, tmp_path) -> Path:
    """A private copy of the tiny BERT for a test to damage."""
    return Path(shutil.copytree(tiny_bert, tmp_path / "model"))


def edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def vocab_size(folder: Path) -> int:
    return json.loads((folder / "config.json").read_text())["vocab_size"]


def token_rows(folder: Path, n: int, reached: bool) -> list[int]:
    """n token ids that the validation texts reach most often (reached), or that they never reach."""
    from collections import Counter

    from tokenizers import Tokenizer

    from export.sentences import VALIDATION_TEXTS

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    counts = Counter(i for enc in tok.encode_batch(list(VALIDATION_TEXTS), add_special_tokens=False) for i in enc.ids)
    if reached:
        return [i for i, _ in counts.most_common(n)]
    return [i for i in range(vocab_size(folder) - 1, -1, -1) if i not in counts][:n]


def test_a_folder_without_vocabulary_files_is_refused(model, tmp_path):
    """(SW1) No tokenizer.json, no vocab.txt: transformers builds a tokenizer of special tokens only."""
    (model / "tokenizer.json").unlink()
    edit_json(model / "tokenizer_config.json", tokenizer_class="BertTokenizer")
    out = refused(cli("export", model, tmp_path / "e"), str(model), "no tokenizer vocabulary", "tokenizer.json",
                  "vocab.txt", "sentencepiece.bpe.model")
    assert "unknown token" in out and not (tmp_path / "e").exists()


def test_a_tokenizer_that_maps_text_to_the_unknown_token_is_refused(model, tmp_path):
    """(SW1) A tokenizer.json whose vocabulary holds only the special tokens reads every word as [UNK]."""
    tok = json.loads((model / "tokenizer.json").read_text())
    tok["model"]["vocab"] = {k: v for k, v in tok["model"]["vocab"].items() if k.startswith("[") and k.endswith("]")}
    (model / "tokenizer.json").write_text(json.dumps(tok))
    refused(cli("export", model, tmp_path / "e"), str(model), "100% of ordinary English text", "'[UNK]'", "tokenizer.json")


def test_a_pooling_module_without_its_config_is_refused(model, tmp_path):
    """(SW3) modules.json lists 1_Pooling but 1_Pooling/config.json is missing: not a silent cls pooling."""
    from conftest import write_st_layout

    write_st_layout(model, {"pooling_mode": "mean"}, max_seq_length=None, normalize=False)
    (model / "1_Pooling" / "config.json").unlink()
    refused(cli("export", model, tmp_path / "e"), f"{model / 'modules.json'} lists a Pooling module at '1_Pooling'",
            "config.json is missing", "--pooling")


@pytest.mark.parametrize("rel", ["../outside", "1_Pooling/../../outside", "/tmp/outside", "..\\outside"])
def test_a_module_path_leading_outside_the_folder_is_refused(rel, model, tmp_path):
    """(SW3) A Pooling path holding '..' (or rooted) is refused, as sentence-transformers refuses it."""
    from conftest import write_st_layout

    write_st_layout(model, {"pooling_mode": "mean"}, max_seq_length=None, normalize=False)
    modules = json.loads((model / "modules.json").read_text())
    modules[1]["path"] = rel
    (model / "modules.json").write_text(json.dumps(modules))
    refused(cli("export", model, tmp_path / "e"), str(model / "modules.json"), f"Pooling module's path {rel!r}",
            "leads outside the model folder")


@pytest.mark.parametrize("value, reached", [("nan", False), ("inf", True)])
def test_non_finite_weights_are_refused_naming_the_tensor(value, reached, model, tmp_path):
    """(SW5, UE4) A NaN or inf row in the token embeddings: refused at fp32 naming the tensor, no fp16 hint. The NaN
    rows are tokens the validation texts never reach (the export passed parity), the inf ones their most common tokens."""
    from safetensors.torch import load_file, save_file

    weights = load_file(model / "model.safetensors")
    name = next(k for k in weights if k.endswith("word_embeddings.weight"))
    rows = vocab_size(model)
    for row in token_rows(model, 2, reached):
        weights[name][row, 3] = float(value)
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    out = refused(cli("export", model, tmp_path / "e", "--precision", "fp32"), "non-finite weights",
                  f"embeddings.word_embeddings.weight (2 of {rows:,} rows hold {value.replace('nan', 'NaN')})",
                  "NaN vector")
    assert "fp16" not in out and not (tmp_path / "e").exists()


def test_an_fp32_parity_miss_from_overflow_does_not_blame_fp16(model, tmp_path):
    """(UE4) Finite weights of extreme size overflow in fp32: the message fits fp32, not '(fp16 overflow?)'."""
    from safetensors.torch import load_file, save_file

    weights = load_file(model / "model.safetensors")
    for key in weights:
        if key.endswith("attention.output.LayerNorm.weight"):
            weights[key][:] = 3e38
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    out = refused(cli("export", model, tmp_path / "e"), "failed parity", "non-finite values in fp32, from finite weights")
    assert "fp16" not in out


def test_a_tokenizer_with_added_tokens_past_the_embedding_table_is_refused(model, tmp_path):
    """(CR1) Tokens added to the tokenizer without resize_token_embeddings: refused with both sizes and the fix."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    tok.add_tokens(["zqxadded1", "zqxadded2", "zqxadded3"])
    tok.save_pretrained(model)
    rows = vocab_size(model)
    refused(cli("export", model, tmp_path / "e"), f"the tokenizer has {rows + 3:,} token ids",
            f"vocab_size is {rows:,}: the embedding table has {rows:,} rows", "3 added tokens ('zqxadded1', 'zqxadded2', "
            f"'zqxadded3'; ids {rows:,}..{rows + 2:,}) have no embedding row", "resize_token_embeddings")


def test_a_special_token_past_the_table_that_text_never_produces_still_exports(model, tmp_path):
    """(CR1) Gemma 3 ships <image_soft_token> one id past its embedding table: no text gets it, the export stays valid."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    tok.add_special_tokens({"additional_special_tokens": ["<image_soft_token>"]})
    tok.save_pretrained(model)
    assert tok.convert_tokens_to_ids("<image_soft_token>") == vocab_size(model)
    r = cli("export", model, tmp_path / "e")
    assert r.exit_code == 0, r.output


def test_a_tokenizer_with_ids_past_the_config_vocab_size_is_refused_up_front(model, tmp_path):
    """(CR3) A model built with a smaller vocab_size than its tokenizer's: refused with the numbers, not IndexError."""
    import torch
    from transformers import AutoConfig, AutoModel

    full = vocab_size(model)
    config = AutoConfig.from_pretrained(model)
    config.vocab_size = full - 40
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(model)
    refused(cli("export", model, tmp_path / "e"), f"the tokenizer has {full:,} token ids",
            f"config.json's vocab_size is {full - 40:,}", "resize_token_embeddings")


@pytest.mark.parametrize("layers", [0, -1])
def test_a_config_with_no_layers_is_refused_with_the_number(layers, model, tmp_path):
    """(CR4) num_hidden_layers 0 or -1: refused naming the field and value, not a RuntimeError."""
    edit_json(model / "config.json", num_hidden_layers=layers)
    refused(cli("export", model, tmp_path / "e"), f"num_hidden_layers {layers} is not a positive integer",
            "at least 1 layer", "config.json")


@pytest.mark.parametrize("key, value, shown", [
    ("num_hidden_layers", 100_000, "100,000 is above the bound of 96 (layers)"),
    ("hidden_size", 32_768, "32,768 is above the bound of 16,384 (hidden size)"),
    ("intermediate_size", 1_000_000, "1,000,000 is above the bound of 65,536 (intermediate size)"),
    ("num_attention_heads", 1_024, "1,024 is above the bound of 256 (attention heads)"),
    ("vocab_size", 2_000_000, "2,000,000 is above the bound of 1,000,000 (vocabulary)"),
    ("max_position_embeddings", 10_000_000, "10,000,000 is above the bound of 131,072 (positions)"),
])
def test_config_sizes_past_the_bounds_are_refused_before_building(key, value, shown, model, tmp_path):
    """(RE4) Each config size is bounded before any weight is allocated; the message names the flag."""
    edit_json(model / "config.json", **{key: value})
    refused(cli("export", model, tmp_path / "e"), f"{key} {shown}", "--allow-large-config")


def test_an_estimated_parameter_count_past_the_bound_is_refused(model, tmp_path):
    """(RE4) Sizes each within bounds that together make a model of hundreds of billions of parameters."""
    edit_json(model / "config.json", num_hidden_layers=96, hidden_size=16_384, intermediate_size=65_536,
              num_attention_heads=128)
    refused(cli("export", model, tmp_path / "e"), "billion parameters", "above the bound of 16 billion",
            "--allow-large-config")
    with pytest.raises(ModelSourceError, match="allow_large_config=True"):
        export_model(ExportOptions(model=str(model), out_dir=str(tmp_path / "e")), log=lambda _m: None)


def test_allow_large_config_builds_a_config_past_the_bounds(model, tmp_path):
    """(RE4) A user who really means it: --allow-large-config exports a 200,000-position table (6.4M weights)."""
    import torch
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(model)
    config.max_position_embeddings = 200_000
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(model)
    r = cli("export", model, tmp_path / "e")
    refused(r, "max_position_embeddings 200,000 is above the bound")
    r = cli("export", model, tmp_path / "e", "--allow-large-config")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "e" / "manifest.json").read_text())["options"]["allow_large_config"] is True


def test_an_error_without_a_message_never_reaches_a_user():
    """(RE4) An empty message (MemoryError has none) is replaced by the error's type, in the exporter and the CLI."""
    from export.source import error_text

    assert error_text(MemoryError()) == "MemoryError (no message)"
    assert error_text(ValueError("bad")) == "ValueError: bad"

    @handle_errors
    def fails():
        raise ModelSourceError("")

    import click

    with pytest.raises(click.ClickException) as info:
        fails()
    assert info.value.message.strip() == "ModelSourceError (no message)"


def test_a_symbolic_link_loop_is_named_as_one(tmp_path, monkeypatch):
    """(UE7) A model folder that is a link loop is named as one, not sent to the hub as an id."""
    monkeypatch.chdir(tmp_path)
    os.symlink("loop", tmp_path / "loop")
    refused(cli("export", "loop", tmp_path / "e"), "'loop' is a symbolic link loop")
    refused(cli("export", tmp_path / "loop", tmp_path / "e"), "is a symbolic link loop")
    with pytest.raises(ModelFolderError, match="is a symbolic link loop"):
        Embedder(str(tmp_path / "loop"), cache_dir=str(tmp_path / "cache"))
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    refused(cli("export", "dangling", tmp_path / "e"), "'dangling' is a symbolic link to", "which does not exist")
