"""`engine serve`: options -> ServeConfig -> engine.serve.serve. Exit codes: 0 after a graceful stop, 1 failure, 2 usage."""
from __future__ import annotations

import os

import click

from ..config import EmbedderConfig
from ..serve.config import (DEFAULT_DRAIN_TIMEOUT_S, DEFAULT_HEARTBEAT_S, DEFAULT_IDLE_TIMEOUT_S, DEFAULT_MAX_HEADER_BYTES,
                            DEFAULT_MAX_INPUTS, DEFAULT_MAX_QUEUED_TOKENS, DEFAULT_MAX_REQUEST_BYTES,
                            DEFAULT_MAX_TEXT_CHARS, DEFAULT_MAX_WAIT_MS, DEFAULT_READ_TIMEOUT_S, ServeConfig)
from .errors import handle_errors
from .options import embedder_options


def _api_key(_ctx, param, value):
    """click ignores an environment variable set to '' (as if unset): refuse it rather than serve with no key."""
    if value is None and os.environ.get("ENGINE_API_KEY") == "":
        raise click.BadParameter("ENGINE_API_KEY is set but empty, which would serve with no authentication; set it "
                                 "to the key, or unset it (unset ENGINE_API_KEY) to serve without one", param=param)
    return value


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port (0: a free one, shown when ready).")
@click.option("--api-key", envvar="ENGINE_API_KEY", show_envvar=True, default=None, callback=_api_key,
              help="Require 'Authorization: Bearer KEY' on the embedding and model routes (printable ASCII, no "
                   "surrounding whitespace). Default: no key.")
@click.option("--max-request-bytes", type=click.IntRange(min=1024), default=DEFAULT_MAX_REQUEST_BYTES, show_default=True,
              help="Largest request body; larger ones get 413.")
@click.option("--max-text-chars", type=click.IntRange(min=1), default=DEFAULT_MAX_TEXT_CHARS, show_default=True,
              help="Most characters in one text, counted before tokenization; longer ones get 413.")
@click.option("--max-header-bytes", type=click.IntRange(min=1024), default=DEFAULT_MAX_HEADER_BYTES, show_default=True,
              help="Largest request line plus headers; larger ones get 431.")
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
@click.option("--idle-timeout-s", type=click.FloatRange(0.1, 3600), default=DEFAULT_IDLE_TIMEOUT_S, show_default=True,
              help="A connection with no request in progress (new, or kept alive after an answer) is closed after "
                   "this many seconds.")
@click.option("--read-timeout-s", type=click.FloatRange(0.1, 3600), default=DEFAULT_READ_TIMEOUT_S, show_default=True,
              help="A request's headers and body must all arrive within this many seconds of its first byte; a "
                   "stalled one gets 408 and its connection is closed.")
@click.option("--drain-timeout-s", type=click.FloatRange(0, 3600), default=DEFAULT_DRAIN_TIMEOUT_S, show_default=True,
              help="After SIGTERM / Ctrl+C, in-flight requests get this many seconds to finish; then every remaining "
                   "connection (idle, half-sent or still running) is closed and the server exits.")
@handle_errors
@embedder_options
def serve(embedder: EmbedderConfig, **server_options) -> None:
    """Serve embeddings over HTTP: OpenAI's and infinity's POST /v1/embeddings and /embeddings, TEI's POST / and /embed
    (and /embed_all, /similarity, /tokenize, /decode, /info), plus /v1/models, /health, /metrics.

    Logs one line when ready; SIGTERM or Ctrl+C stops accepting, finishes in-flight requests (for at most
    --drain-timeout-s) and exits 0.
    """
    from ..serve import serve as run_server

    run_server(ServeConfig(embedder=embedder, **server_options))
