"""embedding-engine: run exported encoder graphs under onnxruntime.

Layout (arrows point down; import-linter enforces them, see pyproject.toml):
  cli      -> bulk, inspect, serve, runtime   the `engine` command
  bulk     -> runtime                     `engine embed`: corpus -> resumable parquet dataset
  inspect  -> runtime                     `engine inspect`: attentions, hidden states, drift
  serve    -> runtime                     `engine serve`: OpenAI- and TEI-compatible HTTP server, cross-request batching
  integrations -> runtime                 LangChain, LlamaIndex, Chroma, LanceDB adapters (imported on demand)
  runtime  -> export (manifest, first-use export)
"""
from .config import EmbedderConfig
from .runtime import ChunkEmbeddings, Embedder, EncodeStats

__all__ = ["Embedder", "EmbedderConfig", "EncodeStats", "ChunkEmbeddings"]
