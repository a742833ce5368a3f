"""Start serving: load and warm the model, bind, log the ready line, run uvicorn until SIGTERM / SIGINT, drain for at
most --drain-timeout-s, exit 0."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys

from ..extras import require
from .config import ServeConfig

ROUND_BATCHES = 2  # a scheduling round holds about this many full batches: enough to sort by length, short enough to be fair
SERVE_MODULES = ("starlette", "uvicorn", "httptools", "prometheus_client", "orjson")
DRAIN_GRACE_S = 5.0  # after the drain deadline closed every connection, how long uvicorn waits for their tasks to end
log = logging.getLogger("engine.serve")


def serve(cfg: ServeConfig) -> None:
    """Serve cfg until SIGTERM or SIGINT; then stop accepting, finish in-flight requests (for at most
    cfg.drain_timeout_s; then every connection left is closed) and return."""
    for module in SERVE_MODULES:
        require(module, "serve", "engine serve")
    _log_to_stderr()
    state = load_state(cfg)
    sock = _bind(cfg.host, cfg.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    providers = ", ".join(state.embedder.providers)
    choice = state.embedder.backend_choice
    log.info("engine serve: backend %s: %s", choice.label, choice.reason)
    log.info("engine serve: ready on http://%s:%d (model %s, device %s, providers %s) task %s", shown, port,
             cfg.model_name, state.embedder.device, providers, state.task)
    run_uvicorn(state, sock)


def load_state(cfg: ServeConfig):
    """The model (an Embedder, a Reranker for a cross-encoder, a ServedSparse for a SPLADE model) loaded and warmed
    (one batch run), batcher started: the server's shared state."""
    from ..runtime.tokenize import special_affixes
    from .app import ServerState
    from .batcher import Batcher
    from .metrics import Metrics
    from .model import open_model, task_of
    from .schemas import Limits

    model = open_model(cfg.embedder)
    _warm_up(model, task_of(model))
    metrics = Metrics()
    batcher = Batcher(model, metrics, cfg.max_queued_tokens, cfg.max_wait_ms / 1000,
                      ROUND_BATCHES * model.max_batch_tokens)
    batcher.start()
    tokenizer = model.tokenizer if task_of(model) == "rerank" else model.rust_tokenizer
    prefix, suffix = special_affixes(tokenizer)
    vocab, rows = tokenizer.get_vocab_size(), model.manifest.get("vocab_size")
    table_rows = rows if type(rows) is int and 0 < rows < vocab else None  # ids past the embedding table fail in the model
    task = task_of(model)
    dim = model.num_labels if task == "rerank" else model.vocab_size if task == "sparse" else model.dim
    limits = Limits(max_inputs=cfg.max_inputs, vocab_size=table_rows or vocab, dim=dim, prefix=tuple(prefix),
                    suffix=tuple(suffix), max_text_chars=cfg.max_text_chars, table_rows=table_rows)
    return ServerState(cfg=cfg, embedder=model, batcher=batcher, metrics=metrics, limits=limits, ready=True)


def _warm_up(model, task: str) -> None:
    """One batch through the model, so the session's buffers exist before the first request."""
    import numpy as np

    from ..runtime.batching import pad_batch

    if task == "rerank":
        pairs = model.pair_sequences([("warm-up: a query", "warm-up: the first batch allocates the session's buffers.")])
        model.score_batch(pad_batch(pairs.ids, np.arange(len(pairs.ids)), model.pad_id, model.pad_multiple,
                                    pairs.type_ids))
    else:
        # an Embedder, or a ServedSparse (the same hooks; its embed_batch runs the sparse head)
        warm = model.sequences(["warm-up: the first batch allocates the session's buffers."])
        model.embed_batch(pad_batch(warm.ids, np.arange(len(warm.ids)), model.pad_id, model.pad_multiple))
    model.reset_stats()


def run_uvicorn(state, sock: socket.socket) -> None:
    """uvicorn on an already listening socket; a signal starts a graceful stop (no re-raise, so the exit code is 0):
    uvicorn closes idle connections at once and waits for in-flight requests; at the drain deadline every connection
    left (a half-sent request, a request still running) is closed, so that no client can keep the server alive."""
    import uvicorn

    from .app import build_app
    from .protocol import bounded_protocol

    cfg = state.cfg

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            state.draining = True  # /health answers 503 from now on
            super().handle_exit(sig, frame)

        async def shutdown(self, sockets=None) -> None:
            deadline = asyncio.get_running_loop().call_later(cfg.drain_timeout_s, self.close_connections)
            try:
                await super().shutdown(sockets)
            finally:
                deadline.cancel()

        def close_connections(self) -> None:
            left = list(self.server_state.connections)
            if left:
                log.warning("engine serve: drain deadline (--drain-timeout-s %g) passed; closing %d connection(s) "
                            "still open", cfg.drain_timeout_s, len(left))
            for connection in left:
                connection.transport.close()

        @contextlib.contextmanager
        def capture_signals(self):
            handled = (signal.SIGINT, signal.SIGTERM)
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    config = uvicorn.Config(build_app(state), log_level="warning", access_log=False, lifespan="on",
                            http=bounded_protocol(cfg.max_header_bytes, cfg.read_timeout_s),
                            timeout_keep_alive=cfg.idle_timeout_s,
                            timeout_graceful_shutdown=cfg.drain_timeout_s + DRAIN_GRACE_S, server_header=False)
    Server(config).run(sockets=[sock])
    log.info("engine serve: stopped after finishing in-flight requests (or the drain deadline)")


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one), so the ready line can print the real address."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _log_to_stderr() -> None:
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
