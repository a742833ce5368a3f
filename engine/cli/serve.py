"""`engine serve`: options -> ServeConfig -> engine.serve.serve. Exit codes: 0 after a graceful stop, 1 failure, 2 usage."""
from __future__ import annotations

import click

from export import POOLING_MODES, PRECISIONS

from ..config import DEVICES, LONG_TEXT, EmbedderConfig
from ..serve.config import (DEFAULT_MAX_INPUTS, DEFAULT_MAX_QUEUED_TOKENS, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_WAIT_MS,
                            ServeConfig)
from .errors import handle_errors


@click.command()
@click.option("--model", default=None, help="Model folder, exported folder or hub id. Default: bundled all-MiniLM-L6-v2.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port (0: a free one, shown when ready).")
@click.option("--api-key", envvar="ENGINE_API_KEY", show_envvar=True, default=None,
              help="Require 'Authorization: Bearer KEY' on the embedding and model routes. Default: no key.")
@click.option("--max-request-bytes", type=click.IntRange(min=1024), default=DEFAULT_MAX_REQUEST_BYTES, show_default=True,
              help="Largest request body; larger ones get 413.")
@click.option("--max-inputs", type=click.IntRange(min=1), default=DEFAULT_MAX_INPUTS, show_default=True,
              help="Most inputs (texts) per request; more get 413.")
@click.option("--max-queued-tokens", type=click.IntRange(min=1), default=DEFAULT_MAX_QUEUED_TOKENS, show_default=True,
              help="Tokens admitted and not yet embedded; past it requests get 429 with Retry-After.")
@click.option("--max-wait-ms", type=click.FloatRange(0, 10_000), default=DEFAULT_MAX_WAIT_MS, show_default=True,
              help="How long an idle engine waits for more requests before running a partial batch.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default=None, help="Model precision (export folders keep their own).")
@click.option("--max-length", type=click.IntRange(min=2), default=None, help="Tokens per text. Default: the model's.")
@click.option("--max-batch-tokens", type=click.IntRange(min=1), default=None, help="Padded tokens per batch. Default: 4096 CPU, 32768 CUDA.")
@click.option("--pooling", type=click.Choice(POOLING_MODES), default=None, help="Default: the model's.")
@click.option("--normalize/--no-normalize", default=None, help="L2-normalize. Default: the model's.")
@click.option("--long-text", type=click.Choice(LONG_TEXT), default="truncate", show_default=True,
              help="Texts over max length: truncate, or embed overlapping chunks and average them.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads. Default: physical cores.")
@click.option("--cache-dir", default=None, help="Where model folders are exported on first use.")
@handle_errors
def serve(model, device, precision, max_length, max_batch_tokens, pooling, normalize, long_text, threads, cache_dir,
          **server_options) -> None:
    """Serve embeddings over HTTP: OpenAI's POST /v1/embeddings and TEI's POST /embed, plus /v1/models, /health, /metrics.

    Logs one line when ready; SIGTERM or Ctrl+C stops accepting, finishes in-flight requests and exits 0.
    """
    from ..serve import serve as run_server

    cfg = EmbedderConfig(model=model, device=device, precision=precision, max_length=max_length,
                         max_batch_tokens=max_batch_tokens, pooling=pooling, normalize=normalize, threads=threads,
                         long_text=long_text, cache_dir=cache_dir)
    run_server(ServeConfig(embedder=cfg, **server_options))
