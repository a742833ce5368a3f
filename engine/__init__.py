"""embedding-engine: run exported encoder graphs on a backend (onnxruntime today), in bulk, over HTTP, in frameworks.

Layout (arrows point down; import-linter enforces them, see pyproject.toml and docs/layout.md):
  cli           the `engine` command: maps options to configs and errors to exit codes
  ray           `engine embed --ray`, embed_dataset          -> bulk, runtime
  bulk          `engine embed`: corpus -> resumable dataset   -> runtime
  inspect       `engine inspect`: attentions, hidden states   -> runtime
  serve         `engine serve`: OpenAI / TEI HTTP routes      -> runtime
  integrations  LangChain, LlamaIndex, Chroma, LanceDB        -> runtime
  runtime       text -> tokenize -> batch -> backend -> head -> results; backends/ holds the backends
  config, errors, extras, filelock: what every layer shares
  export        (its own package) the exporter, and the contract with the runtime: manifest, options, errors
"""
from .config import EmbedderConfig
from .runtime import ChunkEmbeddings, Embedder, EncodeStats, Reranker, SparseEncoder

__all__ = ["Embedder", "Reranker", "SparseEncoder", "EmbedderConfig", "EncodeStats", "ChunkEmbeddings"]
