"""One rerank request, whatever its route: authorize, refuse a server of the other task, read, parse, tokenize the
(query, document) pairs off the event loop, queue them on the batcher (head "score": the same rounds, token budget,
batch splitting and cancellation as embeddings), wait (disconnect-aware), activate, render."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from ..errors import ConfigError
from ..runtime import Reranker
from ..runtime.pairs import PairSequences
from .batcher import SCORE
from .errors import InvalidRequest, PayloadTooLarge, WrongTask, error_response
from .jobs import SequenceFailed
from .rerank_schemas import RerankRequest
from .sequences import Lanes, parse_in_lane, turns
from .state import ServerState
from .transport import ClientGone, HeartbeatResponse, authorize, count, read_body, unless_disconnected

# render(state, parsed request, (N,) scores in document order, tokens) -> the response body
Render = Callable[[ServerState, RerankRequest, np.ndarray, int], bytes]


def rerank_endpoint(state: ServerState, flavor: str, parse: Callable, render: Render):
    """A Starlette endpoint: parse(body, limits) -> a RerankRequest; its pairs' scores -> render(...)."""

    async def endpoint(request: Request):
        admitted = asyncio.Event()
        return HeartbeatResponse(_answer(request, state, flavor, parse, render, admitted), admitted, state.cfg.heartbeat_s)

    return endpoint


async def _answer(request: Request, state: ServerState, flavor: str, parse, render: Render,
                  admitted: asyncio.Event) -> Response:
    route, started = request.url.path, time.perf_counter()
    try:
        authorize(request, state.cfg.api_key)
        state.require("rerank", route)
        model: Reranker = state.embedder
        if model.num_labels != 1:
            raise WrongTask(f"this server serves {state.cfg.model_name!r}, a classifier of {model.num_labels} labels, "
                            f"and {route} ranks by one relevance score per pair: serve a cross-encoder with one label",
                            None, "wrong_task")
        body = await read_body(request, state.cfg.max_request_bytes)
        req = await parse_in_lane(parse, body, state.limits, state.lanes)
        seqs = await pair_sequences(model, req, state.lanes)
        job = state.batcher.submit(seqs, SCORE)
        admitted.set()  # nothing is refused from here on (but a pair the model fails on): a heartbeat may start
        try:
            logits = await unless_disconnected(request, state.batcher.wait(job))
        except SequenceFailed as err:
            where = f"{req.field}[{int(seqs.owner[err.index])}]"
            raise InvalidRequest(f"{where} could not be scored: the model fails on its pair with the query "
                                 f"({type(err.cause).__name__}: {str(err.cause)[:300]}); leave it out", where) from None
        scores = model.activate(model.join_scores(seqs, logits), raw=req.raw_scores).reshape(-1)
        tokens = sum(len(x) for x in seqs.ids)
        state.metrics.input_tokens.labels(route).inc(tokens)
        state.metrics.rerank_pairs.labels(route).inc(len(req.documents))
        t = time.perf_counter()
        out = render(state, req, scores, tokens)
        state.metrics.json_seconds.observe(time.perf_counter() - t)
        response = Response(out, media_type="application/json")
    except ClientGone:
        state.metrics.cancelled.inc()
        response = Response(status_code=499)
    except Exception as err:  # noqa: BLE001 - every failure becomes a shaped answer (errors.py decides which)
        response = error_response(err, flavor)
    return count(state, route, response, started)


async def pair_sequences(model: Reranker, req: RerankRequest, lanes: Lanes) -> PairSequences:
    """(query, document) pairs tokenized off the event loop, in turns of bounded size. With truncate false, a pair over
    max length is refused (413) naming its document; with --long-text chunk, long documents are windowed instead."""
    loop = asyncio.get_running_loop()
    pool = lanes.for_chars(sum(map(len, req.documents)) + len(req.query) * len(req.documents))
    parts = []
    for documents in turns(req.documents):
        pairs = [(req.query, d) for d in documents]
        try:
            parts.append(await loop.run_in_executor(pool, model.pair_sequences, pairs))
        except ConfigError as err:  # long_text chunk: a query that leaves no room for the document
            raise InvalidRequest(str(err).replace("pairs[", f"{req.field}["), "query") from None
        except ValueError as err:  # a text the tokenizer cannot take
            raise InvalidRequest(str(err)) from None
    seqs = _concat(parts)
    if not req.truncate and model.config.long_text != "chunk":
        over = np.flatnonzero(seqs.full_tokens > model.max_length)
        if len(over):
            i = int(over[0])
            where = f"{req.field}[{i}]"
            raise PayloadTooLarge(f"the pair of the query and {where} has {int(seqs.full_tokens[i])} tokens, more than "
                                  f"the model's max length {model.max_length}; shorten it, or send truncate: true to "
                                  f"cut the pair there", where, "input_too_long")
    return seqs


def _concat(parts: list[PairSequences]) -> PairSequences:
    """PairSequences of consecutive slices of one request's documents, as one."""
    if len(parts) == 1:
        return parts[0]
    offsets = np.cumsum([0] + [len(p.full_tokens) for p in parts[:-1]])
    return PairSequences([x for p in parts for x in p.ids], [x for p in parts for x in p.type_ids],
                         np.concatenate([p.owner + off for p, off in zip(parts, offsets)]),
                         np.concatenate([p.full_tokens for p in parts]), sum(p.truncated for p in parts))
