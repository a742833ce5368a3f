"""Frozen runtime configuration, validated once on creation; CLI flags and Embedder arguments map 1:1 to its fields."""
from __future__ import annotations

from dataclasses import dataclass

from export.options import MIN_MAX_LENGTH, POOLING_MODES, PRECISIONS, is_pooling

from .errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
LONG_TEXT = ("truncate", "chunk")
# Padded tokens per batch. CPU throughput was flat from 1k to 8k here; GPUs need large batches to fill.
DEFAULT_MAX_BATCH_TOKENS = {"cpu": 4096, "cuda": 32768}


@dataclass(frozen=True)
class EmbedderConfig:
    """How to build an Embedder: which model, where it runs, how it batches."""

    model: str | None = None  # None: the bundled all-MiniLM-L6-v2
    device: str = "auto"
    precision: str | None = None  # None: fp32 for model folders, the export's own for export folders
    max_length: int | None = None  # None: the export's
    max_batch_tokens: int | None = None  # None: DEFAULT_MAX_BATCH_TOKENS for the device
    pooling: str | None = None
    normalize: bool | None = None
    threads: int | None = None
    long_text: str = "truncate"
    chunk_stride: int | None = None  # tokens shared by neighbouring chunks; None: max_length // 8
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        _choice("device", self.device, DEVICES)
        _choice("long_text", self.long_text, LONG_TEXT)
        if self.precision is not None:
            _choice("precision", self.precision, PRECISIONS)
        if self.pooling is not None and not is_pooling(self.pooling):
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

    def stride_for(self, max_length: int) -> int | None:
        """Tokens shared by neighbouring chunks at this max_length (None when long texts are truncated)."""
        if self.long_text != "chunk":
            return None
        return self.chunk_stride if self.chunk_stride is not None else max_length // 8


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
