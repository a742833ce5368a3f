"""embedding-engine runtime: run exported encoder graphs under onnxruntime."""
from .config import EmbedderConfig
from .embedder import ChunkEmbeddings, Embedder, EncodeStats

__all__ = ["Embedder", "EmbedderConfig", "EncodeStats", "ChunkEmbeddings"]
