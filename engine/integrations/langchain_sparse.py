"""LangChain + Qdrant: EngineSparseEmbeddings, a langchain_qdrant SparseEmbeddings backed by a SparseEncoder (SPLADE).

embed_documents runs the document side (the model's document prompt, if any) and embed_query the query side (an
inference-free model's static token weights: no graph runs for a query), each a langchain_qdrant SparseVector
(indices ascending, values non-zero) equal to SparseEncoder.encode_sparse's. Hand it to QdrantVectorStore as
sparse_embedding=, with retrieval_mode=RetrievalMode.SPARSE, or RetrievalMode.HYBRID with the dense side
engine.integrations.langchain.EngineEmbeddings as embedding= (Qdrant fuses the two rankings, RRF by default). The async
variants are langchain_qdrant's own, which run the sync call in an executor thread.
"""
from __future__ import annotations

from typing import Any

from ..extras import require
from ..runtime import SparseEncoder
from .shared_sparse import adapter_sparse_encoder, check_query, sparse_vectors

_sparse = require("langchain_qdrant.sparse_embeddings", "langchain-qdrant", "engine.integrations.langchain_sparse")
SparseEmbeddings, SparseVector = _sparse.SparseEmbeddings, _sparse.SparseVector


class EngineSparseEmbeddings(SparseEmbeddings):
    """Sparse embeddings for LangChain's QdrantVectorStore from a SparseEncoder, or from SparseEncoder(...)'s
    arguments (one model per process and options). max_active_dims keeps the top that many values per text (None:
    the model's own max_active_dims)."""

    def __init__(self, encoder: SparseEncoder | None = None, *, max_active_dims: int | None = None,
                 **options: Any) -> None:
        """options: SparseEncoder(...)'s keyword arguments, EmbedderConfig's fields (model=, device=, max_length=, ...)."""
        self.encoder, self.max_active_dims = adapter_sparse_encoder(encoder, options, max_active_dims,
                                                                    type(self).__qualname__)

    def embed_documents(self, texts: list[str]) -> list[SparseVector]:
        """One sparse vector per text, in order, from the document side ([] for no texts)."""
        rows = sparse_vectors(self.encoder, texts, query=False, max_active_dims=self.max_active_dims,
                              what="embed_documents")
        return [SparseVector(indices=indices, values=values) for indices, values in rows]

    def embed_query(self, text: str) -> SparseVector:
        """The query's sparse vector, from the query side."""
        [(indices, values)] = sparse_vectors(self.encoder, [check_query(text, "embed_query")], query=True,
                                             max_active_dims=self.max_active_dims, what="embed_query")
        return SparseVector(indices=indices, values=values)

    def __repr__(self) -> str:
        return f"EngineSparseEmbeddings({self.encoder!r}, max_active_dims={self.max_active_dims})"
