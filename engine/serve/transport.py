"""What every route does around its own work: the API-key check, bounded body reads, disconnect-aware waiting,
counting, and the heartbeat that keeps clients with short read timeouts waiting for a long answer."""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import Awaitable

from starlette.requests import Request
from starlette.responses import Response

from .errors import PayloadTooLarge, Unauthorized
from .state import ServerState

DRAIN_CAP = 64 * 2**20  # a body over the limit is read (and discarded) up to this, so the client gets its 413
log = logging.getLogger("engine.serve")


class ClientGone(Exception):
    """The client disconnected before its answer: nothing to send."""


def count(state: ServerState, route: str, response: Response, started: float | None = None) -> Response:
    state.metrics.requests.labels(route, str(response.status_code)).inc()
    if started is not None:
        state.metrics.request_seconds.labels(route).observe(time.perf_counter() - started)
    return response


def authorize(request: Request, api_key: str | None) -> None:
    """With a key set, require `Authorization: Bearer KEY`, compared in constant time."""
    if api_key is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    ok = hmac.compare_digest(given.strip().encode(), api_key.encode())
    if scheme.lower() != "bearer" or not ok:
        raise Unauthorized("missing or wrong API key; send the header 'Authorization: Bearer <key>'", "authorization")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 past limit bytes (read and discarded up to DRAIN_CAP so the client hears the answer)."""
    declared = request.headers.get("content-length", "")
    too_big = declared.isdigit() and int(declared) > limit
    size, chunks = 0, []
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
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


async def unless_disconnected(request: Request, work: Awaitable):
    """Await work; if the client disconnects first, cancel it (its queued texts are dropped) and raise ClientGone."""
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
        raise ClientGone()
    return task.result()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


class HeartbeatResponse:
    """The answer of `work` (a coroutine returning a Response), sent as it is when it comes within `every` seconds of
    admission. When it takes longer, the 200 status and JSON headers go out, then a space every `every` seconds
    (JSON allows leading whitespace), then the body: a client whose read timeout is shorter than the whole request
    (httpx's default is 5 s between reads) keeps waiting instead of giving up on a request the server is working on.

    `admitted` is set by work once nothing can be refused any more (parsed, tokenized, queued), so every 4xx keeps its
    status. If the answer still fails after the headers went out (a backend error, a client that left), the
    connection is closed without the body's end, so no client reads a failure as a 200 answer."""

    def __init__(self, work: Awaitable[Response], admitted: asyncio.Event, every: float) -> None:
        self.work, self.admitted, self.every = work, admitted, every

    async def __call__(self, scope, receive, send) -> None:
        task = asyncio.ensure_future(self.work)
        if self.every <= 0:
            await (await task)(scope, receive, send)
            return
        started = False
        while True:
            await asyncio.wait({task}, timeout=self.every)
            if task.done():
                break
            if self.admitted.is_set():
                if not started:
                    await send({"type": "http.response.start", "status": 200,
                                "headers": [(b"content-type", b"application/json")]})
                    started = True
                await send({"type": "http.response.body", "body": b" ", "more_body": True})
        response = task.result()
        if not started:
            await response(scope, receive, send)
        elif response.status_code == 200:
            await send({"type": "http.response.body", "body": response.body, "more_body": False})
        else:
            log.warning("engine serve: a request failed after its heartbeat started (status %d); closing its "
                        "connection without an answer", response.status_code)
