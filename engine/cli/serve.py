"""`engine serve`: options -> ServeConfig -> engine.serve.serve. Exit codes: 0 after a graceful stop, 1 failure, 2 usage."""
from __future__ import annotations

import click

from ..config import EmbedderConfig
from ..serve.config import (DEFAULT_HEARTBEAT_S, DEFAULT_MAX_INPUTS, DEFAULT_MAX_QUEUED_TOKENS, DEFAULT_MAX_REQUEST_BYTES,
                            DEFAULT_MAX_WAIT_MS, ServeConfig)
from .errors import handle_errors
from .options import embedder_options


@click.command()
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
@click.option("--heartbeat-s", type=click.FloatRange(0, 60), default=DEFAULT_HEARTBEAT_S, show_default=True,
              help="An embedding request still running after this many seconds gets its 200 headers, then a space "
                   "every as many seconds until its JSON body, so clients with short read timeouts keep waiting. "
                   "0: send each answer only when it is complete.")
@handle_errors
@embedder_options
def serve(embedder: EmbedderConfig, **server_options) -> None:
    """Serve embeddings over HTTP: OpenAI's and infinity's POST /v1/embeddings and /embeddings, TEI's POST / and /embed
    (and /embed_all, /similarity, /tokenize, /decode, /info), plus /v1/models, /health, /metrics.

    Logs one line when ready; SIGTERM or Ctrl+C stops accepting, finishes in-flight requests and exits 0.
    """
    from ..serve import serve as run_server

    run_server(ServeConfig(embedder=embedder, **server_options))
