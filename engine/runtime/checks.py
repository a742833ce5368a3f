"""Argument checks of Embedder and encode: options baked into an export, sentence-transformers' encode arguments."""
from __future__ import annotations

import warnings
from pathlib import Path

from ..config import EmbedderConfig
from ..errors import ConfigError
from .postprocess import OUTPUT_PRECISIONS


def check_against_manifest(cfg: EmbedderConfig, manifest: dict, folder: Path) -> None:
    """Options that are baked into an export must agree with it."""
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


def check_encode_options(emb, precision: str, output_value, device, pool, truncate_dim) -> None:
    """Refuse encode options this Embedder cannot honour, naming the fix."""
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
    if truncate_dim is not None and (isinstance(truncate_dim, bool) or not isinstance(truncate_dim, int)
                                     or not 1 <= truncate_dim <= emb.dim):
        raise ValueError(f"truncate_dim must be in 1..{emb.dim}, got {truncate_dim!r}")


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
