"""LlamaIndex: EngineEmbedding, a llama_index BaseEmbedding backed by an Embedder.

Queries get the model's query prompt, texts its document prompt. Batches go to the Embedder whole (it sorts and packs
them by length itself). The async methods run in a worker thread, so the event loop is never blocked.
"""
from __future__ import annotations

import asyncio
from typing import Any

from ..extras import require
from ..runtime import Embedder
from .shared import Encoding, adapter_embedder, check_text_list

_base = require("llama_index.core.base.embeddings.base", "llamaindex", "engine.integrations.llamaindex")
_bridge = require("llama_index.core.bridge.pydantic", "llamaindex", "engine.integrations.llamaindex")
BaseEmbedding, Field, PrivateAttr = _base.BaseEmbedding, _bridge.Field, _bridge.PrivateAttr

# LlamaIndex splits batches by embed_batch_size before calling us; its default of 10 would defeat length sorting.
DEFAULT_EMBED_BATCH_SIZE = 512


class EngineEmbedding(BaseEmbedding):
    """LlamaIndex embeddings from an Embedder, or from Embedder(...)'s arguments (one model per process).

    truncate_dim keeps the first dimensions (Matryoshka models); normalize=True always returns unit vectors.
    """

    truncate_dim: int | None = Field(default=None, description="Keep the first truncate_dim dimensions.")
    normalize: bool | None = Field(default=None, description="True: unit vectors; None: the model's own.")
    _embedder: Embedder = PrivateAttr()
    _encoding: Encoding = PrivateAttr()

    def __init__(self, embedder: Embedder | None = None, *, truncate_dim: int | None = None,
                 normalize: bool | None = None, embed_batch_size: int = DEFAULT_EMBED_BATCH_SIZE, **options: Any) -> None:
        """options: Embedder(...)'s other keyword arguments, EmbedderConfig's fields (model=, device=, precision=, ...);
        normalize is the adapter's output option, and the Embedder's too when the adapter builds it."""
        shared, encoding = adapter_embedder(embedder, {**options, "normalize": normalize}, truncate_dim,
                                            type(self).__qualname__)
        super().__init__(model_name=str(shared.manifest["source"]["model"]), embed_batch_size=embed_batch_size,
                         truncate_dim=truncate_dim, normalize=normalize)
        self._embedder, self._encoding = shared, encoding

    @classmethod
    def class_name(cls) -> str:
        return "EngineEmbedding"

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    def _get_query_embedding(self, query: str) -> list[float]:
        if not isinstance(query, str):
            raise TypeError(f"a query must be a string, got {type(query).__name__}")
        return self._encoding.queries(self._embedder, [query])[0].tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        texts = check_text_list(texts, "get_text_embedding_batch")
        return self._encoding.documents(self._embedder, texts).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
