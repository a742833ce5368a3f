"""Argument checks of Embedder and encode: options baked into an export, sentence-transformers' encode arguments."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..config import EmbedderConfig
from ..errors import ConfigError
from .postprocess import OUTPUT_PRECISIONS
from .tokenize import check_unicode


_TASK_USE = {"embed": "an embedding model (task 'embed'): load it with engine.Embedder, serve it with engine serve "
                      "(/v1/embeddings, /embed)",
             "rerank": "a reranker (task 'rerank', a cross-encoder scoring text pairs): load it with engine.Reranker, "
                       "serve it with engine serve (/rerank, /v1/rerank)",
             "sparse": "a sparse encoder (task 'sparse', SPLADE vocabulary weights): load it with engine.SparseEncoder"}
_TASK_DOES = {"embed": "embed text", "rerank": "score text pairs", "sparse": "encode sparse vectors"}


def check_task(manifest: dict, folder: Path, want: str) -> None:
    """Refuse an export made for another task, naming the model's task and what runs it."""
    have = manifest.get("task", "embed")
    if have != want:
        raise ConfigError(f"{folder} is {_TASK_USE.get(have, repr(have))}, so it cannot {_TASK_DOES[want]}")


def folder_task(model: str | None, pooling: str | None = None) -> str | None:
    """The task of a local model before any export: an export folder's manifest's, a model folder's layout's ('sparse'
    for a SparseEncoder folder, or a *ForMaskedLM folder with pooling 'splade'; 'rerank' for a cross-encoder; else
    'embed'); 'embed' for None (the bundled model); None for a hub id or anything else (its export's manifest says)."""
    from export.crossencoder import is_cross_encoder
    from export.manifest import MANIFEST
    from export.options import SPLADE_POOLING
    from export.sparse_folder import is_sparse_encoder

    from .models import engine_errors, load_export

    if model is None:
        return "embed"
    path = Path(str(model)).expanduser()
    if (path / MANIFEST).is_file():
        return load_export(path).get("task", "embed")
    if not ((path / "config.json").is_file() or (path / "modules.json").is_file()):
        return None
    with engine_errors():  # a folder whose JSON cannot be read is a ModelFolderError, as its export would raise
        if is_sparse_encoder(path) or pooling == SPLADE_POOLING:
            return "sparse"
        return "rerank" if (path / "config.json").is_file() and is_cross_encoder(path) else "embed"


def check_folder_task(model: str | None, want: str, pooling: str | None = None) -> None:
    """Before a model folder is exported on first use: refuse one made for another task (a cross-encoder given to
    an Embedder, an embedding model given to a Reranker or a SparseEncoder, ...), so no export runs for nothing.
    pooling 'splade' makes a *ForMaskedLM folder a sparse encoder. Export folders and hub ids are checked once their
    manifest is read (check_task)."""
    from export.manifest import MANIFEST

    if want != "embed" and model is None:
        raise ConfigError(f"{'Reranker needs a cross-encoder' if want == 'rerank' else 'SparseEncoder needs a SPLADE model'}: "
                          "pass its model folder or export folder (the bundled default model is an embedding model)")
    path = Path(str(model)).expanduser() if model is not None else None
    if path is None or (path / MANIFEST).is_file():
        return
    have = folder_task(model, pooling)
    if have is not None and have != want:
        hint = ("; a SparseEncoder needs a SPLADE model: a sentence-transformers SparseEncoder folder or a *ForMaskedLM "
                "checkpoint" if want == "sparse" else "")
        raise ConfigError(f"{path} is {_TASK_USE[have]}, so it cannot {_TASK_DOES[want]}{hint}")


def check_against_manifest(cfg: EmbedderConfig, manifest: dict, folder: Path) -> None:
    """Options that are baked into an export must agree with it (and it must be an embedder)."""
    check_task(manifest, folder, "embed")
    baked = {"pooling": manifest["pooling"], "normalize": manifest["normalize"], "precision": manifest["precision"]}
    for name, have in baked.items():
        want = getattr(cfg, name)
        if want is not None and want != have:
            raise ConfigError(f"{folder} was exported with {name}={have!r} but {name}={want!r} was asked; "
                              f"re-export with 'engine export MODEL DIR --{name.replace('_', '-')} ...' or pass the model folder")
    if cfg.max_length and cfg.max_length > manifest["max_length"]:
        raise ConfigError(f"max_length {cfg.max_length} exceeds the export's {manifest['max_length']}; re-export with --max-length")


def texts_argument(inputs, sentences):
    """The texts, given as inputs= (sentence-transformers 6) or sentences= (earlier versions), not both."""
    if inputs is not None and sentences is not None:
        raise TypeError("pass the texts once, as inputs= (or the older name sentences=), not both")
    if inputs is None and sentences is None:
        raise TypeError("encode() needs the texts: encode(['a text', ...]) or encode(inputs=[...])")
    return inputs if inputs is not None else sentences


def check_encode_options(emb, precision: str, output_value, device, pool, truncate_dim, batch_size=None, prompt=None,
                         prompt_name=None, chunk_size=None, **flags) -> None:
    """Refuse encode arguments this Embedder cannot honour, naming each with its value and what it accepts: a wrong
    type is a TypeError, a value out of range a ValueError. flags: encode's on/off arguments (bool, or None where
    sentence-transformers' default is None)."""
    if precision not in OUTPUT_PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(OUTPUT_PRECISIONS)}")
    if output_value not in ("sentence_embedding", "token_embeddings", None):
        raise ValueError(f"output_value {output_value!r} must be 'sentence_embedding', 'token_embeddings' or None (all outputs)")
    if output_value is None and precision != "float32":
        raise ValueError("precision applies to sentence or token embeddings, not to output_value=None (all outputs); "
                         f"use output_value='sentence_embedding' with precision={precision!r}")
    check_device(emb.device, device)
    if pool is not None:
        raise ValueError("pool (multi-process encoding) is not needed: one Embedder already uses every core; "
                         "call encode(texts) without pool=")
    if chunk_size is not None:
        raise ValueError(f"chunk_size={chunk_size!r} sizes the chunks of a multi-process pool, which an Embedder does "
                         "not use (pool must be None); call encode(texts) without chunk_size= (batch_size= caps rows "
                         "per batch)")
    check_count("truncate_dim", truncate_dim, emb.dim, f"the width to cut embeddings to, at most the model's {emb.dim}")
    check_batch_size(batch_size)
    for name, value in (("prompt", prompt), ("prompt_name", prompt_name)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a string or None, got {type(value).__name__} {value!r}")
    if prompt is not None:
        check_unicode(prompt, "prompt")
    for name, value in flags.items():
        if not (isinstance(value, (bool, np.bool_)) or (value is None and name == "show_progress_bar")):
            raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")


def check_batch_size(batch_size) -> None:
    """batch_size: None (only the token budget packs batches) or a row cap of at least 1."""
    check_count("batch_size", batch_size, None, "a cap on texts per batch (None: only the token budget packs them)")


def check_count(name: str, value, top: int | None, meaning: str) -> None:
    """value: None or an int in 1..top (top None: no upper bound); bool is not an int here."""
    if value is None:
        return
    accepted = f"in 1..{top} (an integer, or None)" if top is not None else "an integer >= 1, or None"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be {accepted}: {meaning}; got {type(value).__name__} {value!r}")
    if value < 1 or (top is not None and value > top):
        raise ValueError(f"{name} must be {accepted}: {meaning}; got {value!r}")


def check_device(own: str, device) -> None:
    """encode(device=...) may only name the Embedder's own device ('cuda' and 'cuda:0' are the same GPU)."""
    if device is None:
        return
    if isinstance(device, (list, tuple)):
        raise ValueError(f"device={list(device)!r} asks for sentence-transformers' multi-process encoding, which an "
                         "Embedder does not need: it already runs every CPU core, or its GPU; call encode(texts) "
                         "without device=, and for several GPUs run one Embedder per GPU (CUDA_VISIBLE_DEVICES)")
    kind, _, index = str(device).partition(":")  # a string or a torch.device
    if kind != own or index not in ("", "0"):
        gpu = f" with CUDA_VISIBLE_DEVICES={index} (it runs on the first visible GPU)" if index not in ("", "0") else ""
        raise ValueError(f"this Embedder runs on {str(own)!r}; choose the device when creating it, "
                         f"Embedder(..., device={kind!r}){gpu}")


def progress_bar(total: int, enabled: bool):
    """A tqdm bar on stderr when asked for and available."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        warnings.warn("show_progress_bar needs tqdm; continuing without a bar", RuntimeWarning, stacklevel=3)
        return None
    return tqdm(total=total, unit="text", desc="encode")
