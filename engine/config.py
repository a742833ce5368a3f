"""Frozen runtime configuration; CLI flags map 1:1 to these fields."""
from __future__ import annotations

from dataclasses import dataclass

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
    max_length: int | None = None
    max_batch_tokens: int | None = None  # None: DEFAULT_MAX_BATCH_TOKENS for the device
    pooling: str | None = None
    normalize: bool | None = None
    threads: int | None = None
    long_text: str = "truncate"
    chunk_stride: int | None = None  # tokens shared by neighbouring chunks; None: max_length // 8
    cache_dir: str | None = None
