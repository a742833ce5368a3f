"""The runtime: text in, vectors out. Knows no files, HTTP or CLI.

  tokenize, batching, prefetch, stages   texts (or text pairs) -> padded batches, prepared in a background thread
  backend                                the Backend interface: a padded batch -> named output arrays
  backends/                              the backends (ort: onnxruntime) and open_backend, the one place that picks one
  heads                                  a graph output -> per-input results (pooled vector, token vectors, ...)
  embedder                               Embedder: the pipeline behind sentence-transformers' encode
  reranker, pairs, scores                Reranker: cross-encoder pairs -> scores (CrossEncoder's predict, rank)
  sparse_encoder, sparse_outputs         SparseEncoder: SPLADE sparse vectors (sentence-transformers' SparseEncoder)
  models                                 a model argument -> a checked export folder (exported once, cached)
  pooling, postprocess, similarity, prompts, introspect, checks: the numpy and sentence-transformers parts
"""
from .embedder import ChunkEmbeddings, Embedder, Sequences
from .reranker import Reranker
from .sparse_encoder import SparseEncoder
from .stages import EncodeStats

__all__ = ["Embedder", "Reranker", "SparseEncoder", "EncodeStats", "ChunkEmbeddings", "Sequences"]
