"""The benchmark's models and their exports: the bundled all-MiniLM-L6-v2 and a random-weight BERT-base."""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .corpus import bundled_model_path

# bert-base-uncased's config.json, written out so nothing is downloaded; only the weights are random.
BERT_BASE_CONFIG = {
    "architectures": ["BertModel"],
    "attention_probs_dropout_prob": 0.1,
    "classifier_dropout": None,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 768,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "model_type": "bert",
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "type_vocab_size": 2,
    "use_cache": True,
    "vocab_size": 30522,
}
BERT_SEED = 0
# The bundled MiniLM uses bert-base-uncased's own WordPiece vocabulary (30522 tokens, uncased), so its tokenizer fits.
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


@dataclass(frozen=True)
class ModelSpec:
    """A benchmark model: its Hugging Face folder and how it is run."""

    key: str  # "minilm" | "bert-base"
    label: str  # shown in the report
    source: Path  # Hugging Face folder with sentence-transformers metadata
    max_length: int
    random_weights: bool = False

    def config(self) -> dict:
        from .gemm import model_config

        return model_config(self.source)


def minilm() -> ModelSpec:
    """all-MiniLM-L6-v2 as bundled (trained weights; mean pooling, normalized, max_length 256)."""
    return ModelSpec("minilm", "all-MiniLM-L6-v2", bundled_model_path(), 256)


def bert_base(cache: Path, max_length: int = 512, log=print) -> ModelSpec:
    """A BERT-base-sized model (bert-base-uncased's config, random weights, seed 0) in a sentence-transformers layout.

    Mean pooling + L2 normalization like MiniLM. Built once into cache/bert-base-random. The CPU suite exports it at
    max_length 256 (its BERT-base corpus is medium texts; the exporter validates up to max_length, and at 512 the two
    exports take about ten minutes on 2 cores); the GPU suite at 512.
    """
    folder = Path(cache) / "bert-base-random"
    stamp = folder / ".complete"
    if not stamp.is_file():
        log(f"building random-weight BERT-base (bert-base-uncased config, seed {BERT_SEED}) in {folder}")
        _build_bert_base(folder)
    return ModelSpec("bert-base", "BERT-base (random weights)", folder, max_length, random_weights=True)


def _build_bert_base(folder: Path) -> None:
    import torch
    from transformers import BertConfig, BertModel

    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.manual_seed(BERT_SEED)
    model = BertModel(BertConfig(**BERT_BASE_CONFIG), add_pooling_layer=True).eval()
    model.save_pretrained(str(tmp), safe_serialization=True)
    src = bundled_model_path()
    for name in _TOKENIZER_FILES:
        shutil.copy(src / name, tmp / name)
    tok_cfg = json.loads((tmp / "tokenizer_config.json").read_text())
    tok_cfg["model_max_length"] = 512
    (tmp / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2))
    # sentence-transformers layout: Transformer -> mean Pooling -> Normalize, as all-MiniLM-L6-v2.
    (tmp / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ], indent=2))
    (tmp / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 512, "do_lower_case": False}))
    (tmp / "1_Pooling").mkdir()
    (tmp / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 768, "pooling_mode_mean_tokens": True}))
    (tmp / "2_Normalize").mkdir()
    (tmp / "README.md").write_text("Random weights (seed 0) with bert-base-uncased's config: for speed benchmarks only.\n")
    (tmp / ".complete").write_text("ok\n")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def ensure_export(spec: ModelSpec, precision: str, cache: Path, given: dict | None = None, log=print) -> Path:
    """An export folder of spec at precision: a given one, a matching cached one, or a fresh export into the cache.

    Raises export.ParityError when a fresh export fails its parity check (the caller reports and skips it).
    """
    from export import ExportOptions, export_model, read_manifest
    from export.source import hash_folder

    name = f"{spec.key}-{precision}"
    if given and name in given:
        return Path(given[name])
    out = Path(cache) / "exports" / f"{name}-{spec.max_length}"
    if (out / "manifest.json").is_file():
        try:
            m = read_manifest(out)
            recipe_ok = not precision.startswith("int8") or m.get("quantization", {}).get("recipe") == precision
            if (m["precision"] == precision and recipe_ok and m["max_length"] == spec.max_length
                    and m["source"]["content_hash"] == hash_folder(spec.source)):
                return out
        except Exception:  # noqa: BLE001 - any unreadable or invalid cached export is rebuilt
            pass
    log(f"exporting {spec.label} at {precision} to {out} (cached for later runs)")
    export_model(ExportOptions(model=str(spec.source), out_dir=str(out), precision=precision, max_length=spec.max_length,
                               overwrite=True), log=lambda m: log(f"  {m}"))
    return out


def default_cache() -> Path:
    """Where the benchmark keeps its exports and the random BERT-base: the engine's cache folder + /bench."""
    if os.environ.get("EMBEDDING_ENGINE_CACHE"):
        return Path(os.environ["EMBEDDING_ENGINE_CACHE"]) / "bench"
    hf_home = os.environ.get("HF_HOME")
    base = Path(hf_home) / "embedding-engine" if hf_home else Path.home() / ".cache" / "embedding-engine"
    return base / "bench"
