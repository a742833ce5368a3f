"""Drop-in embedding backends for search-index frameworks, one module per library.

  langchain.py   EngineEmbeddings          langchain_core.embeddings.Embeddings       [langchain]
  llamaindex.py  EngineEmbedding           llama_index BaseEmbedding                   [llamaindex]
  chroma.py      EngineEmbeddingFunction   chromadb EmbeddingFunction (persistable)    [chroma]
  lancedb.py     EngineEmbeddings          LanceDB registry entry "embedding-engine"   [lancedb]
  shared.py      one loaded Embedder per distinct model and runtime options, shared by every adapter
  langchain_sparse.py   EngineSparseEmbeddings   langchain_qdrant SparseEmbeddings (hybrid search)  [langchain-qdrant]
  llamaindex_sparse.py  engine_sparse_fns        llama-index QdrantVectorStore sparse_doc_fn/_query_fn [llamaindex-qdrant]
  shared_sparse.py      one loaded SparseEncoder per model and options, shared by the sparse adapters

Nothing here is imported by `import engine`; each module imports its framework when it is imported itself.
"""
