"""The Starlette app: routes, API-key check, bounded body reads, and disconnect-aware waiting."""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..runtime import Embedder
from .batcher import Batcher
from .config import ServeConfig
from .errors import PayloadTooLarge, Unauthorized, error_response
from .metrics import Metrics
from .responses import openai_body, tei_body
from .schemas import Limits, parse_openai, parse_tei
from .sequences import to_sequences

DRAIN_CAP = 64 * 2**20  # a body over the limit is read (and discarded) up to this, so the client gets its 413


@dataclass
class ServerState:
    """What the routes share: the config, the model, the batcher, the metrics, and whether to take traffic."""

    cfg: ServeConfig
    embedder: Embedder
    batcher: Batcher
    metrics: Metrics
    limits: Limits
    tokenizer: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="engine-tokenize"))
    ready: bool = False  # set once the warm-up batch ran
    draining: bool = False  # set on SIGTERM / SIGINT
    created: int = field(default_factory=lambda: int(time.time()))


def build_app(state: ServerState) -> Starlette:
    """Routes: POST /v1/embeddings (OpenAI), POST /embed (TEI), GET /v1/models, /health, /metrics."""

    async def openai_embeddings(request: Request) -> Response:
        return await _embed(request, state, "openai")

    async def tei_embed(request: Request) -> Response:
        return await _embed(request, state, "tei")

    async def models(request: Request) -> Response:
        try:
            _authorize(request, state.cfg.api_key)
        except Unauthorized as err:
            return _count(state, "/v1/models", error_response(err, "openai"))
        body = {"object": "list", "data": [{"id": state.cfg.model_name, "object": "model", "created": state.created,
                                            "owned_by": "embedding-engine"}]}
        return _count(state, "/v1/models", Response(orjson.dumps(body), media_type="application/json"))

    async def health(_request: Request) -> Response:
        if state.ready and not state.draining:
            return Response(b'{"status":"ok"}', media_type="application/json")
        status = "shutting down" if state.draining else "loading"
        return Response(orjson.dumps({"status": status}), status_code=503, media_type="application/json")

    async def metrics(_request: Request) -> Response:
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        # uvicorn calls this after in-flight requests finished: let the batcher end, then the tokenizer thread
        await asyncio.get_running_loop().run_in_executor(None, state.batcher.stop)
        state.tokenizer.shutdown()

    routes = [Route("/v1/embeddings", openai_embeddings, methods=["POST"]), Route("/embed", tei_embed, methods=["POST"]),
              Route("/v1/models", models, methods=["GET"]), Route("/health", health, methods=["GET"]),
              Route("/metrics", metrics, methods=["GET"])]
    return Starlette(routes=routes, lifespan=lifespan)


async def _embed(request: Request, state: ServerState, flavor: str) -> Response:
    """Both embedding routes: authorize, read, parse, tokenize (off the loop), batch, answer; every error is shaped."""
    route, started = request.url.path, time.perf_counter()
    field_name = "input" if flavor == "openai" else "inputs"
    try:
        _authorize(request, state.cfg.api_key)
        body = await _read_body(request, state.cfg.max_request_bytes)
        req = (parse_openai if flavor == "openai" else parse_tei)(body, state.limits)
        seqs = await to_sequences(state.embedder, req, field_name, state.tokenizer)
        vectors = await _unless_disconnected(request, state.batcher.embed(seqs))
        vectors = state.embedder.join_sequences(seqs, vectors)  # (N, D) float32
        tokens = int(seqs.tokens.sum())
        state.metrics.input_tokens.labels(route).inc(tokens)
        t = time.perf_counter()
        out = openai_body(vectors, req, state.cfg.model_name, tokens) if flavor == "openai" else tei_body(vectors, req)
        state.metrics.json_seconds.observe(time.perf_counter() - t)
        response = Response(out, media_type="application/json")
    except _ClientGone:
        state.metrics.cancelled.inc()
        response = Response(status_code=499)  # nobody is there to read it; counted as 499 as nginx does
    except Exception as err:  # noqa: BLE001 - every failure becomes a shaped answer (errors.py decides which)
        response = error_response(err, flavor)
    return _count(state, route, response, started)


def _count(state: ServerState, route: str, response: Response, started: float | None = None) -> Response:
    state.metrics.requests.labels(route, str(response.status_code)).inc()
    if started is not None:
        state.metrics.request_seconds.labels(route).observe(time.perf_counter() - started)
    return response


def _authorize(request: Request, api_key: str | None) -> None:
    """With a key set, require `Authorization: Bearer KEY`, compared in constant time."""
    if api_key is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    ok = hmac.compare_digest(given.strip().encode(), api_key.encode())
    if scheme.lower() != "bearer" or not ok:
        raise Unauthorized("missing or wrong API key; send the header 'Authorization: Bearer <key>'", "authorization")


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 past limit bytes (read and discarded up to DRAIN_CAP so the client hears the answer)."""
    declared = request.headers.get("content-length", "")
    too_big = declared.isdigit() and int(declared) > limit
    size, chunks = 0, []
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        too_big = too_big or size > limit
        if not too_big:
            chunks.append(chunk)
        if not message.get("more_body", False) or size > DRAIN_CAP:
            break
    if too_big:
        total = int(declared) if declared.isdigit() else size
        raise PayloadTooLarge(f"the body has {total} bytes, more than this server's limit of {limit}; split the request "
                              f"(or start the server with a larger --max-request-bytes)", None, "payload_too_large")
    return b"".join(chunks)


class _ClientGone(Exception):
    """The client disconnected before its answer: nothing to send."""


async def _unless_disconnected(request: Request, work):
    """Await work; if the client disconnects first, cancel it (its queued texts are dropped) and raise _ClientGone."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise _ClientGone()
    return task.result()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
