"""LlamaIndex: EngineRerank, a node postprocessor that reranks with a Reranker (an exported cross-encoder).

It behaves as llama-index's SentenceTransformerRerank: each node's content (MetadataMode.EMBED, as it embeds) is scored
against the query, and the top_n nodes come back, best first, with the new scores (keep_retrieval_score=True keeps the
old one in the node's metadata["retrieval_score"]). Use it in node_postprocessors=[...] of a query engine or chat
engine, or call postprocess_nodes(nodes, query_str=...) on a retriever's results.
"""
from __future__ import annotations

from typing import Any

from ..extras import require
from ..runtime import Reranker
from .shared import check_text_list
from .shared_rerank import adapter_reranker, check_top_n, ranked

_FEATURE = "engine.integrations.llamaindex_rerank"
_types = require("llama_index.core.postprocessor.types", "llamaindex", _FEATURE)
_schema = require("llama_index.core.schema", "llamaindex", _FEATURE)
_bridge = require("llama_index.core.bridge.pydantic", "llamaindex", _FEATURE)
_callbacks = require("llama_index.core.callbacks", "llamaindex", _FEATURE)
BaseNodePostprocessor, Field, PrivateAttr = _types.BaseNodePostprocessor, _bridge.Field, _bridge.PrivateAttr
MetadataMode, NodeWithScore, QueryBundle = _schema.MetadataMode, _schema.NodeWithScore, _schema.QueryBundle
CBEventType, EventPayload = _callbacks.CBEventType, _callbacks.EventPayload


class EngineRerank(BaseNodePostprocessor):
    """LlamaIndex reranking from a Reranker, or from Reranker(...)'s arguments (one model per process and options)."""

    model: str = Field(description="The cross-encoder's export folder.")
    top_n: int | None = Field(default=2, description="Number of nodes to return sorted by score (None: all).")
    keep_retrieval_score: bool = Field(default=False, description="Keep the retrieval score in metadata.")
    _reranker: Reranker = PrivateAttr()

    def __init__(self, reranker: Reranker | None = None, *, top_n: int | None = 2, keep_retrieval_score: bool = False,
                 **options: Any) -> None:
        """options: Reranker(...)'s keyword arguments, EmbedderConfig's fields (model=, device=, max_length=, ...)."""
        top_n = check_top_n(top_n, type(self).__qualname__)
        shared = adapter_reranker(reranker, options, type(self).__qualname__)
        super().__init__(model=str(shared.model_dir), top_n=top_n, keep_retrieval_score=keep_retrieval_score)
        self._reranker = shared

    @classmethod
    def class_name(cls) -> str:
        return "EngineRerank"

    @property
    def reranker(self) -> Reranker:
        return self._reranker

    def _postprocess_nodes(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None) -> list[NodeWithScore]:
        if query_bundle is None:
            raise ValueError("EngineRerank needs the query: postprocess_nodes(nodes, query_str=...) or "
                             "query_bundle=QueryBundle(...) (a query engine passes it itself)")
        if not nodes:
            return []
        texts = check_text_list([n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes], "EngineRerank")
        payload = {EventPayload.NODES: nodes, EventPayload.MODEL_NAME: self.model,
                   EventPayload.QUERY_STR: query_bundle.query_str, EventPayload.TOP_K: self.top_n}
        with self.callback_manager.event(CBEventType.RERANKING, payload=payload) as event:
            out = []
            for i, score in ranked(self._reranker, query_bundle.query_str, texts, self.top_n):
                if self.keep_retrieval_score:
                    nodes[i].node.metadata["retrieval_score"] = nodes[i].score
                out.append(NodeWithScore(node=nodes[i].node, score=score))
            event.on_end(payload={EventPayload.NODES: out})
        return out
