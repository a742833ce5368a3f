"""Frozen runtime configuration, validated once on creation: the one declaration of the runtime options.

CLI flags (engine.cli.options), Embedder(...) keyword arguments and the integrations' options (engine.integrations)
are derived from EmbedderConfig's fields; each field's metadata (option(...)) holds its CLI help, choices and minimum.
"""
from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from export.options import MIN_MAX_LENGTH, POOLING_MODES, PRECISIONS, SPLADE_POOLING, is_pooling

from .errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
# auto: OpenVINO for bf16 exports (model folders are exported bf16 on CPUs with bf16 units when openvino is installed),
# onnxruntime for the rest; engine.runtime.backends.choice decides, and says why.
BACKENDS = ("auto", "onnxruntime", "openvino")
LONG_TEXT = ("truncate", "chunk")
# Padded tokens per batch. CPU throughput was flat from 1k to 8k here; GPUs need large batches to fill.
DEFAULT_MAX_BATCH_TOKENS = {"cpu": 4096, "cuda": 32768}


def option(help: str, choices: tuple[str, ...] | None = None, min: int | None = None) -> dict:
    """An EmbedderConfig field's metadata: its CLI help, and the CLI's choices or minimum where one applies.
    (__post_init__ stays the validation; these describe the options to the CLI and to the integrations.)"""
    return {"help": help, "choices": choices, "min": min}


@dataclass(frozen=True)
class EmbedderConfig:
    """How to build an Embedder: which model, where it runs, how it batches."""

    # Each field's metadata is its CLI option (engine.cli.options): help, and choices or a minimum where one applies.
    # None: the bundled all-MiniLM-L6-v2
    model: str | None = field(default=None, metadata=option(
        "Model folder, exported folder or hub id. Default: bundled all-MiniLM-L6-v2."))
    device: str = field(default="auto", metadata=option(
        "Where to run: auto picks CUDA when an NVIDIA device is visible, else CPU.", choices=DEVICES))
    backend: str = field(default="auto", metadata=option(
        "What runs the graph: auto picks OpenVINO for bf16 exports (model folders are exported bf16 on CPUs with "
        "bf16 units when openvino is installed), else onnxruntime.", choices=BACKENDS))
    # None: fp32 for model folders (bf16 where backend auto picks OpenVINO), the export's own for export folders
    precision: str | None = field(default=None, metadata=option(
        "Model precision (export folders keep their own).", choices=PRECISIONS))
    # None: the export's
    max_length: int | None = field(default=None, metadata=option(
        "Tokens per text. Default: the model's.", min=MIN_MAX_LENGTH))
    # None: DEFAULT_MAX_BATCH_TOKENS for the device
    max_batch_tokens: int | None = field(default=None, metadata=option(
        "Padded tokens per batch. Default: 4096 CPU, 32768 CUDA.", min=1))
    # The CLI offers the single modes; combinations joined by '+' (cls+mean) are accepted here too.
    pooling: str | None = field(default=None, metadata=option("Default: the model's.", choices=POOLING_MODES))
    normalize: bool | None = field(default=None, metadata=option("L2-normalize. Default: the model's."))
    threads: int | None = field(default=None, metadata=option("CPU threads. Default: physical cores.", min=1))
    long_text: str = field(default="truncate", metadata=option(
        "Texts over max length: truncate, or embed overlapping chunks and average them.", choices=LONG_TEXT))
    # tokens shared by neighbouring chunks; None: max_length // 8
    chunk_stride: int | None = field(default=None, metadata=option(
        "Tokens shared by neighbouring chunks. Default: max length / 8.", min=0))
    cache_dir: str | None = field(default=None, metadata=option(
        "Where model folders are exported on first use. Default: $EMBEDDING_ENGINE_CACHE, else "
        "$HF_HOME/embedding-engine, else ~/.cache/embedding-engine."))
    # A warm start trusts file metadata (names, sizes, mtimes); this reads every byte instead (docs/python-api.md).
    verify_cache: bool = field(default=False, metadata=option(
        "Hash the model folder and the export's files against its manifest before use (reads every byte; a cached "
        "export that fails is rebuilt)."))

    def __post_init__(self) -> None:
        _choice("device", self.device, DEVICES)
        _choice("backend", self.backend, BACKENDS)
        _choice("long_text", self.long_text, LONG_TEXT)
        if self.precision is not None:
            _choice("precision", self.precision, PRECISIONS)
        if self.pooling is not None and self.pooling != SPLADE_POOLING and not is_pooling(self.pooling):
            raise ConfigError(f"pooling {self.pooling!r} is not one of {', '.join(POOLING_MODES)}, "
                              "or combinable modes joined by '+' (e.g. cls+mean)")
        _int_at_least("max_length", self.max_length, MIN_MAX_LENGTH)
        _int_at_least("max_batch_tokens", self.max_batch_tokens, 1)
        _int_at_least("threads", self.threads, 1)
        _int_at_least("chunk_stride", self.chunk_stride, 0)
        if self.long_text == "chunk" and self.max_length is not None:
            # A chunk holds max_length tokens, the special ones included; the stride must leave new text in each.
            # (Embedder checks the exact room once the tokenizer's special tokens are known, before any input is read.)
            _int_at_least("max_length (with long_text 'chunk')", self.max_length, MIN_MAX_LENGTH + 1)
            if self.chunk_stride is not None and self.chunk_stride >= self.max_length - MIN_MAX_LENGTH:
                raise ConfigError(f"chunk_stride {self.chunk_stride} must be below max_length {self.max_length} minus "
                                  f"the special tokens; pass a smaller --chunk-stride or a larger --max-length")
        if self.normalize is not None and not isinstance(self.normalize, bool):
            raise ConfigError(f"normalize must be True, False or None, got {self.normalize!r}")
        if self.cache_dir is not None and (not isinstance(self.cache_dir, (str, os.PathLike))
                                           or not os.fspath(self.cache_dir).strip()):
            raise ConfigError(f"cache_dir {self.cache_dir!r} is not a folder path (an unset variable?); pass the folder, "
                              "or leave it out for $EMBEDDING_ENGINE_CACHE / the default cache")
        if not isinstance(self.verify_cache, bool):
            raise ConfigError(f"verify_cache must be True or False, got {self.verify_cache!r}")

    def stride_for(self, max_length: int) -> int | None:
        """Tokens shared by neighbouring chunks at this max_length (None when long texts are truncated)."""
        if self.long_text != "chunk":
            return None
        return self.chunk_stride if self.chunk_stride is not None else max_length // 8


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(EmbedderConfig))
FIELD_TYPES: dict[str, Any] = typing.get_type_hints(EmbedderConfig)  # name -> annotation (str | None, ...), evaluated


def config_from_options(options: Mapping[str, Any], what: str) -> EmbedderConfig:
    """EmbedderConfig(**options), where an unknown key is a ConfigError naming it and the valid ones (not a raw
    TypeError): how every caller (the integrations, embed_dataset) reports an unknown option. what: who got them."""
    check_option_names(options, what)
    return EmbedderConfig(**options)


def check_option_names(names: Iterable[str], what: str) -> None:
    """A ConfigError naming each of names that is not an EmbedderConfig field, and listing the fields."""
    unknown = sorted(set(names) - set(FIELD_NAMES))
    if unknown:
        raise ConfigError(f"{what}: unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                          f"the options are EmbedderConfig's fields: {', '.join(FIELD_NAMES)}")


def _choice(name: str, value, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} {value!r} is not one of {', '.join(allowed)}")


def _int_at_least(name: str, value, low: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ConfigError(f"{name} must be at least {low}, got {value}")
