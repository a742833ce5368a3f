"""LangChain rerankers backed by a Reranker (an exported cross-encoder).

  EngineReranker      a langchain_core BaseDocumentCompressor: compress_documents keeps the top_n documents, best
                      first, each with its score in metadata["relevance_score"] (as LangChain's Cohere reranker does);
                      use it as ContextualCompressionRetriever's base_compressor
  EngineCrossEncoder  a langchain_core BaseCrossEncoder (score(text_pairs) -> list[float]), for LangChain's own
                      CrossEncoderReranker(model=..., top_n=...)

Both take a Reranker, or Reranker(...)'s keyword arguments (model= the cross-encoder, device=, ...): one loaded model
per options, shared with every other reranker adapter.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from ..extras import require
from ..runtime import Reranker
from .shared import check_text_list
from .shared_rerank import adapter_reranker, check_top_n, pair_scores, ranked

_FEATURE = "engine.integrations.langchain_rerank"
_documents = require("langchain_core.documents", "langchain", _FEATURE)
BaseCrossEncoder = require("langchain_core.cross_encoders", "langchain", _FEATURE).BaseCrossEncoder
PrivateAttr = require("pydantic", "langchain", _FEATURE).PrivateAttr
BaseDocumentCompressor, Document = _documents.BaseDocumentCompressor, _documents.Document


class EngineReranker(BaseDocumentCompressor):
    """A LangChain document compressor that reranks with a cross-encoder: the top_n documents (None: all), best first,
    with metadata["relevance_score"] (the model's score, CrossEncoder.predict's). The input documents are not changed.
    """

    model: str
    """The cross-encoder's export folder (set from the Reranker)."""
    top_n: int | None = 3
    """Number of documents to return (None: all of them, sorted)."""
    _reranker: Reranker = PrivateAttr()

    def __init__(self, reranker: Reranker | None = None, *, top_n: int | None = 3, **options: Any) -> None:
        """options: Reranker(...)'s keyword arguments, EmbedderConfig's fields (model=, device=, max_length=, ...)."""
        top_n = check_top_n(top_n, type(self).__qualname__)
        shared = adapter_reranker(reranker, options, type(self).__qualname__)
        super().__init__(model=str(shared.model_dir), top_n=top_n)
        self._reranker = shared

    @property
    def reranker(self) -> Reranker:
        return self._reranker

    def compress_documents(self, documents: Sequence[Document], query: str, callbacks=None) -> Sequence[Document]:
        """The top_n documents for query, best first, copies with metadata["relevance_score"]; [] for none."""
        docs = list(documents)
        texts = check_text_list([d.page_content for d in docs], "compress_documents")
        out = []
        for i, score in ranked(self._reranker, query, texts, self.top_n):
            meta = copy.deepcopy(docs[i].metadata)
            meta["relevance_score"] = score
            out.append(docs[i].model_copy(update={"metadata": meta}))
        return out


class EngineCrossEncoder(BaseCrossEncoder):
    """A LangChain cross-encoder (langchain_core.cross_encoders.BaseCrossEncoder) backed by a Reranker."""

    def __init__(self, reranker: Reranker | None = None, **options: Any) -> None:
        """options: Reranker(...)'s keyword arguments, EmbedderConfig's fields (model=, device=, max_length=, ...)."""
        self.reranker = adapter_reranker(reranker, options, type(self).__qualname__)

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        """One score per (query, document) pair, in order, as CrossEncoder.predict gives them; [] for no pairs."""
        return pair_scores(self.reranker, text_pairs)

    def __repr__(self) -> str:
        return f"EngineCrossEncoder({self.reranker!r})"
