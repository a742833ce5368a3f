"""The runtime: text in, vectors out. Knows no files, HTTP or CLI; needs only onnxruntime, tokenizers and numpy."""
from .embedder import ChunkEmbeddings, Embedder, Sequences
from .stages import EncodeStats

__all__ = ["Embedder", "EncodeStats", "ChunkEmbeddings", "Sequences"]
