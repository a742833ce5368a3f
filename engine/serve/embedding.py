"""One embedding request, whatever its route: authorize, read, parse, tokenize (off the loop), queue on the batcher,
wait (disconnect-aware), render; every failure becomes an answer in the route's API shape."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from ..runtime import Sequences
from .errors import InvalidRequest, MissingHead, error_response
from .jobs import SequenceFailed
from .sequences import Name, parse_in_lane, to_sequences
from .state import ServerState
from .transport import ClientGone, HeartbeatResponse, authorize, count, read_body, unless_disconnected

# render(state, parsed request, sequences, per-sequence results, tokens) -> the response body
Render = Callable[[ServerState, object, Sequences, object, int], bytes]


def embedding_endpoint(state: ServerState, flavor: str, parse: Callable, render: Render, head: str = "pooled",
                       embed_request: Callable = lambda parsed: parsed, name: Name | None = None, task: str = "embed"):
    """A Starlette endpoint: parse(body, limits) -> a request; embed_request(request) -> its EmbedRequest; the results
    of the runtime head `head` -> render(...). name(i): how a refusal names input i (default input[i] / inputs[i]).
    task: the model task the route needs ('embed'; 'sparse' for /embed_sparse), any other refused naming the model's.
    Answers slower than --heartbeat-s get a heartbeat (HeartbeatResponse)."""
    field_name = "input" if flavor == "openai" else "inputs"
    name = name or (lambda i: f"{field_name}[{i}]")

    async def endpoint(request: Request):
        admitted = asyncio.Event()
        work = _answer(request, state, flavor, parse, render, head, embed_request, name, admitted, task)
        return HeartbeatResponse(work, admitted, state.cfg.heartbeat_s)

    return endpoint


async def _answer(request: Request, state: ServerState, flavor: str, parse, render: Render, head: str, embed_request,
                  name: Name, admitted: asyncio.Event, task: str) -> Response:
    route, started = request.url.path, time.perf_counter()
    try:
        authorize(request, state.cfg.api_key)
        state.require(task, route)
        body = await read_body(request, state.cfg.max_request_bytes)
        parsed = await parse_in_lane(parse, body, state.limits, state.lanes)
        if head not in state.embedder.heads:
            raise MissingHead(f"this model was exported without per-token outputs, which {route} returns; export it "
                              f"with 'engine export MODEL DIR --token-embeddings' and serve that folder")
        seqs = await to_sequences(state.embedder, embed_request(parsed), name, state.lanes, state.limits)
        if head != "pooled":
            seqs = first_windows(seqs)
        job = state.batcher.submit(seqs, head)
        admitted.set()  # nothing is refused from here on (but a sequence the model fails on): a heartbeat may start
        try:
            results = await unless_disconnected(request, state.batcher.wait(job))
        except SequenceFailed as err:
            raise failed_input(err, name(int(seqs.owner[err.index]))) from None
        tokens = int(seqs.tokens.sum())
        state.metrics.input_tokens.labels(route).inc(tokens)
        t = time.perf_counter()
        out = render(state, parsed, seqs, results, tokens)
        state.metrics.json_seconds.observe(time.perf_counter() - t)
        response = Response(out, media_type="application/json")
    except ClientGone:
        state.metrics.cancelled.inc()
        response = Response(status_code=499)  # nobody is there to read it; counted as 499 as nginx does
    except Exception as err:  # noqa: BLE001 - every failure becomes a shaped answer (errors.py decides which)
        response = error_response(err, flavor)
    return count(state, route, response, started)


def failed_input(err: SequenceFailed, where: str) -> InvalidRequest:
    """The refusal of an input the model failed on when it ran alone."""
    cause = f"{type(err.cause).__name__}: {err.cause}"
    cause = cause if len(cause) <= 300 else cause[:300] + "..."
    return InvalidRequest(f"{where} could not be embedded: the model fails on it ({cause}); the inputs batched with it "
                          f"were embedded. Check its token ids against this model's vocabulary, or leave it out", where)


def first_windows(seqs: Sequences) -> Sequences:
    """One sequence per text: with --long-text chunk, each text's first window (its tokens truncated at max length)."""
    if seqs.weights is None:
        return seqs
    _, first = np.unique(seqs.owner, return_index=True)
    n = len(seqs.full_tokens)
    return Sequences([seqs.ids[i] for i in first], np.arange(n, dtype=np.int64), None, seqs.full_tokens)


def pooled_vectors(state: ServerState, seqs: Sequences, results) -> np.ndarray:
    """(N, D) float32 per-text vectors (chunks averaged as Embedder.encode does)."""
    return state.embedder.join_sequences(seqs, results)
