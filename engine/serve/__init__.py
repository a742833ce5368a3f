"""`engine serve`: an OpenAI- and TEI-compatible embedding server with cross-request dynamic batching.

  config     ServeConfig (frozen, validated)
  schemas    OpenAI / TEI request bodies -> EmbedRequest
  sequences  EmbedRequest -> the runtime's Sequences (tokenized off the event loop)
  batcher    admission, round-robin rounds, the inference thread
  responses  vectors -> JSON (orjson) or base64 bodies
  metrics    Prometheus metrics
  errors     the server's errors and their HTTP statuses and bodies, in one place
  app        the Starlette routes
  run        load, warm, bind, uvicorn, graceful stop
"""
from .config import ServeConfig
from .run import serve

__all__ = ["ServeConfig", "serve"]
