"""The runtime options shared by `engine embed` and `engine serve`: declared once, mapped 1:1 onto EmbedderConfig."""
from __future__ import annotations

import functools

import click

from export import POOLING_MODES, PRECISIONS

from ..config import DEVICES, LONG_TEXT, EmbedderConfig

FIELDS = ("model", "device", "precision", "max_length", "max_batch_tokens", "pooling", "normalize", "long_text",
          "chunk_stride", "threads", "cache_dir")


def embedder_options(fn):
    """Add the EmbedderConfig options to a command; the command receives `embedder` (an EmbedderConfig) instead."""
    options = [
        click.option("--model", default=None, help="Model folder, exported folder or hub id. Default: bundled all-MiniLM-L6-v2."),
        click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True),
        click.option("--precision", type=click.Choice(PRECISIONS), default=None,
                     help="Model precision (export folders keep their own)."),
        click.option("--max-length", type=click.IntRange(min=2), default=None, help="Tokens per text. Default: the model's."),
        click.option("--max-batch-tokens", type=click.IntRange(min=1), default=None,
                     help="Padded tokens per batch. Default: 4096 CPU, 32768 CUDA."),
        click.option("--pooling", type=click.Choice(POOLING_MODES), default=None, help="Default: the model's."),
        click.option("--normalize/--no-normalize", default=None, help="L2-normalize. Default: the model's."),
        click.option("--long-text", type=click.Choice(LONG_TEXT), default="truncate", show_default=True,
                     help="Texts over max length: truncate, or embed overlapping chunks and average them."),
        click.option("--chunk-stride", type=click.IntRange(min=0), default=None,
                     help="Tokens shared by neighbouring chunks. Default: max length / 8."),
        click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads. Default: physical cores."),
        click.option("--cache-dir", default=None, help="Where model folders are exported on first use."),
    ]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        embedder = EmbedderConfig(**{name: kwargs.pop(name) for name in FIELDS})
        return fn(*args, embedder=embedder, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper
