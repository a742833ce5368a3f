"""The Starlette app: the OpenAI / infinity and TEI route families, /health and /metrics, and JSON answers (in the
path's API shape) for every unknown route or method."""
from __future__ import annotations

import asyncio
import contextlib

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import MethodNotAllowed, NotFound, error_response, flavor_of
from .openai_routes import openai_routes
from .rerank_routes import rerank_routes
from .state import ServerState
from .tei_routes import tei_routes

__all__ = ["ServerState", "build_app"]


def build_app(state: ServerState) -> Starlette:
    """openai_routes (POST /v1/embeddings, /embeddings; GET /v1/models[/{id}], /models[/{id}]), tei_routes (POST /,
    /embed, /embed_all, /similarity, /embed_sparse, /tokenize, /decode, /invocations; GET /info, /, /ping),
    rerank_routes (POST /rerank, /v1/rerank, /v2/rerank), GET /health, /metrics. Every route is there whatever the
    model's task; one of another task answers 400 naming the model's task."""

    async def health(_request: Request) -> Response:
        if state.ready and not state.draining:
            return Response(b'{"status":"ok"}', media_type="application/json")
        status = "shutting down" if state.draining else "loading"
        return Response(orjson.dumps({"status": status}), status_code=503, media_type="application/json")

    async def metrics(_request: Request) -> Response:
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        """Starlette's 404 (no route) and 405 (wrong method) as JSON in the path's family (OpenAI's or TEI's)."""
        path, method = request.url.path, request.method
        if exc.status_code == 405:
            allow = (exc.headers or {}).get("Allow", "")
            err = MethodNotAllowed(f"{method} is not allowed on {path}; use {allow or 'another method'}", allow)
        elif exc.status_code == 404:
            err = NotFound(f"no route {method} {path} on this server; it serves {ROUTE_SUMMARY}", None, "not_found")
        else:
            return Response(orjson.dumps({"error": str(exc.detail)}), status_code=exc.status_code,
                            media_type="application/json")
        response = error_response(err, flavor_of(path))
        state.metrics.requests.labels("unknown" if exc.status_code == 404 else path, str(response.status_code)).inc()
        return response

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        # uvicorn calls this after in-flight requests finished: let the batcher end, then the tokenizer threads
        await asyncio.get_running_loop().run_in_executor(None, state.batcher.stop)
        state.lanes.shutdown()

    routes = [*openai_routes(state), *tei_routes(state, health), *rerank_routes(state), Route("/health", health, methods=["GET"]),
              Route("/metrics", metrics, methods=["GET"])]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: http_error, 405: http_error})


ROUTE_SUMMARY = ("POST /v1/embeddings, /embeddings, /, /embed, /embed_all, /similarity, /embed_sparse, /tokenize, "
                 "/decode, /rerank, /v1/rerank, /v2/rerank; "
                 "GET /v1/models, /models, /info, /health, /metrics")
