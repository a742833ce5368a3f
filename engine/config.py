"""Frozen runtime configuration; CLI flags map 1:1 to these fields."""
from __future__ import annotations

from dataclasses import dataclass

DEVICES = ("auto", "cpu", "cuda")
LONG_TEXT = ("truncate", "chunk")
DEFAULT_MAX_BATCH_TOKENS = 16384


@dataclass(frozen=True)
class EmbedderConfig:
    """How to build an Embedder: which model, where it runs, how it batches."""

    model: str | None = None  # None: the bundled all-MiniLM-L6-v2
    device: str = "auto"
    precision: str = "fp32"
    max_length: int | None = None
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS
    pooling: str | None = None
    normalize: bool | None = None
    threads: int | None = None
    long_text: str = "truncate"
    chunk_stride: int | None = None  # tokens shared by neighbouring chunks; None: max_length // 8
    cache_dir: str | None = None
