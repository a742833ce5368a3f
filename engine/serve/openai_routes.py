"""OpenAI's routes (and infinity's, which are OpenAI's without the /v1 prefix): embeddings and the model list."""
from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .embedding import embedding_endpoint, pooled_vectors
from .errors import NotFound, Unauthorized, error_response
from .responses import model_object, models_body, openai_body
from .schemas import parse_infinity, parse_openai
from .state import ServerState
from .transport import authorize, count


def openai_routes(state: ServerState) -> list[Route]:
    """POST /v1/embeddings, /embeddings; GET /v1/models, /models, /v1/models/{id}, /models/{id}."""

    def render(state, req, seqs, results, tokens) -> bytes:
        return openai_body(pooled_vectors(state, seqs, results), req, state.cfg.model_name, tokens)

    embeddings = embedding_endpoint(state, "openai", parse_openai, render)
    infinity_embeddings = embedding_endpoint(state, "openai", parse_infinity, render)

    def listed(request: Request) -> dict:
        """The served model as the route's family lists it: OpenAI's fields on /v1, infinity's on /models (whose
        client parses stats and accepts no owner but 'infinity', so none is given there)."""
        infinity = not request.url.path.startswith("/v1/")
        stats = {"queue_fraction": state.batcher.queued_tokens / state.cfg.max_queued_tokens,
                 "queue_absolute": state.batcher.queued_requests, "results_pending": state.batcher.queued_requests,
                 "batch_size": state.embedder.max_batch_tokens}
        return model_object(state.cfg.model_name, state.created, None if infinity else "embedding-engine", stats,
                            state.embedder.backend_choice.name, (state.task,))

    async def models(request: Request) -> Response:
        route = request.url.path
        try:
            authorize(request, state.cfg.api_key)
        except Unauthorized as err:
            return count(state, route, error_response(err, "openai"))
        return count(state, route, Response(models_body(listed(request)), media_type="application/json"))

    async def model(request: Request) -> Response:
        route = "/v1/models/{id}" if request.url.path.startswith("/v1/") else "/models/{id}"
        try:
            authorize(request, state.cfg.api_key)
            wanted = request.path_params["model_id"]
            if wanted != state.cfg.model_name:
                raise NotFound(f"the model {wanted!r} does not exist; this server serves {state.cfg.model_name!r} "
                               f"(GET /v1/models lists it)", "model", "model_not_found")
            return count(state, route, Response(orjson.dumps(listed(request)), media_type="application/json"))
        except Exception as err:  # noqa: BLE001 - shaped as every other answer
            return count(state, route, error_response(err, "openai"))

    return [Route("/v1/embeddings", embeddings, methods=["POST"]), Route("/embeddings", infinity_embeddings, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]), Route("/models", models, methods=["GET"]),
            Route("/v1/models/{model_id:path}", model, methods=["GET"]), Route("/models/{model_id:path}", model, methods=["GET"])]
