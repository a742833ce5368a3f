"""LangChain: EngineEmbeddings, a langchain_core.embeddings.Embeddings backed by an Embedder.

embed_documents uses the model's document prompt and embed_query its query prompt (E5, BGE, ...). The async
variants are LangChain's own, which run the sync call in an executor thread, so the event loop is never blocked.
"""
from __future__ import annotations

from typing import Any

from ..extras import require
from ..runtime import Embedder
from .shared import adapter_embedder, check_text_list

Embeddings = require("langchain_core.embeddings", "langchain", "engine.integrations.langchain").Embeddings


class EngineEmbeddings(Embeddings):
    """LangChain embeddings from an Embedder, or from Embedder(...)'s arguments (one model per process).

    truncate_dim keeps the first dimensions (Matryoshka models); normalize=True always returns unit vectors.
    """

    def __init__(self, embedder: Embedder | None = None, *, truncate_dim: int | None = None, **options: Any) -> None:
        """options: Embedder(...)'s keyword arguments, EmbedderConfig's fields (model=, device=, precision=, ...)."""
        self.embedder, self.encoding = adapter_embedder(embedder, options, truncate_dim, type(self).__qualname__)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order ([] for no texts)."""
        texts = check_text_list(texts, "embed_documents")
        return self.encoding.documents(self.embedder, texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """The query's vector."""
        if not isinstance(text, str):
            raise TypeError(f"embed_query takes one string, got {type(text).__name__}")
        return self.encoding.queries(self.embedder, [text])[0].tolist()

    def __repr__(self) -> str:
        return f"EngineEmbeddings({self.embedder!r}, truncate_dim={self.encoding.truncate_dim})"
