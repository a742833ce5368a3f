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
    if output_value not in ("sentence_embedding", "token_embeddings"):
        raise ValueError(f"output_value {output_value!r} must be 'sentence_embedding' or 'token_embeddings'")
    if device is not None and device != emb.device:
        raise ValueError(f"this Embedder runs on {emb.device!r}; choose the device when creating it, "
                         f"Embedder(..., device={device!r})")
    if pool is not None:
        raise ValueError("pool (multi-process encoding) is not needed: one Embedder already uses every core")
    if truncate_dim is not None and not 1 <= truncate_dim <= emb.dim:
        raise ValueError(f"truncate_dim must be in 1..{emb.dim}, got {truncate_dim}")


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
