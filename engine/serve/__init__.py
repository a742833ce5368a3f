"""`engine serve`: an OpenAI-, infinity- and TEI-compatible embedding server (and a TEI-, Cohere- and Jina-compatible
reranker server for a cross-encoder) with cross-request dynamic batching.

  config         ServeConfig (frozen, validated)
  jsonbody       a body as JSON: nesting depth bounded before parsing, JSON type names in refusals
  schemas        request bodies (OpenAI, infinity, TEI) -> EmbedRequest and the tokenizer routes' requests
  sequences      EmbedRequest -> the runtime's Sequences (tokenized off the event loop, in two lanes, in turns)
  jobs           one request's work in the batcher, and how it ends
  batcher        admission, round-robin rounds of length-sorted slices, the inference thread, per-head batches (a
                 failing batch split until only the failing sequences fail)
  responses      results -> JSON (orjson) or base64 bodies in each API's shape
  metrics        Prometheus metrics
  errors         the server's errors and their HTTP statuses and bodies (and which API family a path is), in one place
  state          ServerState: what every route shares
  transport      API key, bounded body reads, disconnect-aware waiting, counting, the heartbeat response
  model          which model a server runs: an Embedder, or a Reranker (task 'rerank', from the export's manifest)
  embedding      one embedding request, whatever its route
  rerank_schemas rerank bodies (TEI's /rerank, Cohere's and Jina's /v1/rerank, /v2/rerank) -> RerankRequest
  rerank         one rerank request: pairs tokenized off the loop, scored through the batcher's "score" head
  rerank_responses scores -> TEI's and Cohere's / Jina's rerank bodies, highest score first
  rerank_routes  POST /rerank, /v1/rerank, /v2/rerank
  openai_routes  /v1/embeddings, /embeddings, /v1/models, /models, /v1/models/{id}
  tei_routes     POST /, /embed, /embed_all, /similarity, /tokenize, /decode, /invocations; GET /info, /, /ping
  app            the Starlette app: both route families, /health, /metrics, JSON 404 / 405
  protocol       uvicorn's HTTP protocol with idle and read timeouts and a header-size limit
  run            load, warm, bind, uvicorn, graceful stop with a drain deadline
"""
from .config import ServeConfig
from .run import serve

__all__ = ["ServeConfig", "serve"]
