"""LlamaIndex + Qdrant: sparse_doc_fn / sparse_query_fn for QdrantVectorStore(enable_hybrid=True), backed by a
SparseEncoder (SPLADE).

llama-index's QdrantVectorStore encodes sparse vectors through two callables of one signature (its
SparseEncoderCallable): a list of texts -> (list of index lists, list of value lists). engine_sparse_fns builds the
pair: sparse_doc_fn runs the document side on the nodes' text (MetadataMode.EMBED, as the store hands it over),
sparse_query_fn the query side (an inference-free model's static token weights: no graph runs for a query); each
vector equals SparseEncoder.encode_sparse's. The dense side is engine.integrations.llamaindex.EngineEmbedding:

    fns = engine_sparse_fns(model="out/splade")
    store = QdrantVectorStore(client=client, collection_name="docs", enable_hybrid=True, **fns._asdict())
    index = VectorStoreIndex.from_documents(docs, storage_context=..., embed_model=EngineEmbedding(...))
    index.as_query_engine(vector_store_query_mode="hybrid", sparse_top_k=10, similarity_top_k=5)

Without hybrid_fusion_fn the store fuses with its relative_score_fusion (min-max scaled scores, alpha 0.5).
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

from ..extras import require
from ..runtime import SparseEncoder
from .shared_sparse import adapter_sparse_encoder, sparse_vectors

_utils = require("llama_index.vector_stores.qdrant.utils", "llamaindex-qdrant", "engine.integrations.llamaindex_sparse")
SparseEncoderCallable = _utils.SparseEncoderCallable


class SparseFns(NamedTuple):
    """The two callables, named as QdrantVectorStore's arguments: QdrantVectorStore(..., **fns._asdict())."""

    sparse_doc_fn: SparseEncoderCallable
    sparse_query_fn: SparseEncoderCallable


def engine_sparse_fns(encoder: SparseEncoder | None = None, *, max_active_dims: int | None = None,
                      **options: Any) -> SparseFns:
    """(sparse_doc_fn, sparse_query_fn) from a SparseEncoder, or from SparseEncoder(...)'s arguments (one model per
    process and options; options are EmbedderConfig's fields: model=, device=, max_length=, ...). max_active_dims
    keeps the top that many values per text (None: the model's own)."""
    shared, k = adapter_sparse_encoder(encoder, options, max_active_dims, "engine_sparse_fns")
    return SparseFns(functools.partial(encode_batch, shared, False, k), functools.partial(encode_batch, shared, True, k))


def encode_batch(encoder: SparseEncoder, query: bool, max_active_dims: int | None,
                 texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
    """llama-index's BatchSparseEncoding of texts: (index lists, value lists), in order; query: the query side."""
    rows = sparse_vectors(encoder, texts, query=query, max_active_dims=max_active_dims,
                          what="sparse_query_fn" if query else "sparse_doc_fn")
    return [i for i, _ in rows], [v for _, v in rows]
