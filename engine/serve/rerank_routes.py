"""The rerank routes: TEI's POST /rerank (also POST / and /invocations on a reranker, TEI's task route), and Cohere's
and Jina's POST /v1/rerank (Cohere's v1 API, Jina's, litellm's cohere/ provider) and /v2/rerank (cohere's ClientV2)."""
from __future__ import annotations

from starlette.routing import Route

from .rerank import rerank_endpoint
from .rerank_responses import cohere_rerank_body, tei_rerank_body
from .rerank_schemas import parse_cohere_rerank, parse_tei_rerank
from .state import ServerState


def tei_rerank(state: ServerState):
    """TEI's POST /rerank endpoint."""
    return rerank_endpoint(state, "tei", parse_tei_rerank, lambda _state, req, scores, _tokens: tei_rerank_body(scores, req))


def rerank_routes(state: ServerState) -> list[Route]:
    """POST /rerank (TEI), /v1/rerank and /v2/rerank (Cohere, Jina)."""
    cohere = rerank_endpoint(state, "openai", parse_cohere_rerank,
                             lambda state, req, scores, tokens: cohere_rerank_body(scores, req, state.cfg.model_name, tokens))
    return [Route("/rerank", tei_rerank(state), methods=["POST"]), Route("/v1/rerank", cohere, methods=["POST"]),
            Route("/v2/rerank", cohere, methods=["POST"])]
