"""Embedder API edges: bad input, model folders, devices, prompts, long-text chunking."""
from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest

from engine import Embedder
from engine.errors import ConfigError, ModelFolderError, ProviderUnavailableError


@pytest.mark.parametrize("bad, index", [(["ok", None], 1), ([3, "ok"], 0), (["a", "b", b"bytes"], 2)])
def test_non_string_items_raise_type_error_naming_index(embedder, bad, index):
    with pytest.raises(TypeError, match=rf"texts\[{index}\]"):
        embedder.encode(bad)


def test_missing_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ModelFolderError, match="does not exist"):
        Embedder(tmp_path / "nope", device="cpu")


def test_folder_without_config_or_manifest_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFolderError, match="config.json"):
        Embedder(tmp_path / "empty", device="cpu")


def test_invalid_manifest_is_refused(minilm_export, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(minilm_export, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["valid"] = False
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFolderError, match="not marked valid"):
        Embedder(broken, device="cpu")


def test_options_baked_into_an_export_must_agree(minilm_export):
    with pytest.raises(ConfigError, match="pooling"):
        Embedder(minilm_export, device="cpu", pooling="cls")
    with pytest.raises(ConfigError, match="max_length"):
        Embedder(minilm_export, device="cpu", max_length=512)


def test_cuda_without_gpu_raises_and_auto_runs_on_cpu(minilm_export):
    from export.devices import gpu_visible

    if gpu_visible():
        pytest.skip("a GPU is present; this test checks the no-GPU path")
    with pytest.raises(ProviderUnavailableError, match="CUDA requested"):
        Embedder(minilm_export, device="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Embedder(minilm_export, device="auto").device == "cpu"


def test_model_folder_is_exported_once_into_the_cache(tiny_models, tmp_path):
    first = Embedder(tiny_models["bert"], device="cpu", cache_dir=str(tmp_path))  # a tiny model: the export takes seconds
    stamp = (first.model_dir / "manifest.json").stat().st_mtime_ns
    second = Embedder(tiny_models["bert"], device="cpu", cache_dir=str(tmp_path))
    assert first.model_dir == second.model_dir and first.model_dir.parent == tmp_path
    assert (second.model_dir / "manifest.json").stat().st_mtime_ns == stamp
    assert np.abs(first.encode(["cache"]) - second.encode(["cache"])).max() == 0


def test_prompts_from_metadata_are_prepended(minilm_export, tmp_path):
    folder = tmp_path / "prompted"
    shutil.copytree(minilm_export, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["prompts"] = {"query": "query: ", "document": "passage: "}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    emb = Embedder(folder, device="cpu")
    q = emb.encode_query(["what is a list"])
    d = emb.encode_document(["a list is a sequence"])
    assert np.abs(q - emb.encode(["query: what is a list"])).max() == 0
    assert np.abs(d - emb.encode(["passage: a list is a sequence"])).max() == 0
    with pytest.raises(ValueError, match="prompt_name"):
        emb.encode(["x"], prompt_name="nope")


def test_chunk_mode_aggregates_token_weighted_chunks(minilm_export, real_texts):
    emb = Embedder(minilm_export, device="cpu", long_text="chunk", max_length=64, chunk_stride=8)
    long_text = max(real_texts, key=len)
    short_text = "a short text fits in one chunk"
    chunks = emb.encode_chunks([long_text, short_text])
    owners = chunks.text_index
    assert (owners == 0).sum() > 3 and (owners == 1).sum() == 1
    w = chunks.tokens[owners == 0].astype(np.float64)
    expected = (chunks.embeddings[owners == 0] * w[:, None]).sum(0) / w.sum()
    expected /= np.linalg.norm(expected)  # the model normalizes, so the aggregate is re-normalized
    got = emb.encode([long_text, short_text])
    assert np.abs(got[0] - expected).max() < 1e-5
    truncating = Embedder(minilm_export, device="cpu", max_length=64)
    assert np.abs(got[1] - truncating.encode([short_text])[0]).max() < 1e-5
