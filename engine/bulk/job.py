"""EmbedJob: the one frozen description of an `engine embed` (task "embed", or "sparse" for a SPLADE model) or
`engine score` (task "rerank") run; CLI options map 1:1 to its fields."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from ..config import EmbedderConfig
from ..errors import ConfigError
from .rows import BAD_ROW_POLICIES

DTYPES = ("float32", "float16", "int8", "ubinary")  # ubinary: packed sign bits, as sentence-transformers names it
DEFAULT_ROWS_PER_PART = 100_000
# Rows per Embedder.encode call: long enough to sort by length, short enough that progress moves (about 10 s of
# all-MiniLM-L6-v2 on 2 CPU cores per 1,024 rows) and, on CUDA, long enough to amortize a call.
DEFAULT_WINDOW_ROWS = {"cpu": 1024, "cuda": 8192}
# What the job's model does: a row's embedding, its sparse (SPLADE) vector, or its (query, text) pair's score.
TASKS = ("embed", "sparse", "rerank")
SPARSE_OPTIONS = "a sparse vector is SPLADE's (indices int32, values float32), pooled and truncated by the model"


@dataclass(frozen=True)
class EmbedJob:
    """What to embed (or score), where to write it, and with which Embedder (or Reranker, for task "rerank")."""

    input: str
    output: str
    text_column: str = "text"
    id_column: str | None = None  # None: the row number across the whole input
    keep_columns: tuple[str, ...] = ()
    dtype: str = "float32"
    on_bad_row: str = "error"
    allow_duplicate_ids: bool = False
    overwrite: bool = False
    quiet: bool = False
    rows_per_part: int = DEFAULT_ROWS_PER_PART  # rows of input per output part: the unit of resume
    window_rows: int | None = None  # rows per Embedder.encode call (sorted by length inside); None: by device
    lancedb_table: str | None = None  # write into this table of the LanceDB database folder `output` (upsert by id)
    index: bool = False  # with lancedb_table: build an ANN index sized to the row count at the end
    qdrant_collection: str | None = None  # write into this collection of the Qdrant local-mode folder `output`
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    task: str = "embed"  # "rerank": score each row's (query_column, text_column) pair into a `score` column
    query_column: str | None = None  # task "rerank" only (engine score's --query-column)
    raw_scores: bool = False  # task "rerank" only: store the logits, not the model's activation of them
    # task "embed" only: a SPLADE model whose vector goes into a `sparse` column next to `embedding` (one read, both)
    sparse_model: str | None = None
    max_active_dims: int | None = None  # the sparse vector's most non-zero dimensions; None: the sparse model's own
    # Ray (engine embed --ray; none of these changes the output, so none is in the fingerprint).
    ray: str | None = None  # None: the local runner; "local": a local Ray instance; else auto, host:port, ray://host:port
    actors: tuple[int, int] | None = None  # (min, max) actors; None: 1 up to as many as the cluster fits
    cpus_per_actor: float | None = None  # None: 1 (the actor's Embedder gets as many threads)
    gpus_per_actor: float | None = None  # None: 1 with --device cuda, else 0

    def __post_init__(self) -> None:
        if not str(self.output).strip():
            raise ConfigError("OUTPUT is an empty path (an unset variable?); pass the folder to write the embeddings to")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if self.on_bad_row not in BAD_ROW_POLICIES:
            raise ConfigError(f"on_bad_row {self.on_bad_row!r} is not one of {', '.join(BAD_ROW_POLICIES)}")
        if self.rows_per_part < 1 or (self.window_rows is not None and self.window_rows < 1):
            raise ConfigError("rows_per_part and window_rows must be positive")
        if self.task == "embed" and ("embedding" in self.keep_columns or "id" in self.keep_columns):
            raise ConfigError("--keep-columns cannot name 'embedding' or 'id': the output already has those columns")
        if self.ray is None and (self.actors, self.cpus_per_actor, self.gpus_per_actor) != (None, None, None):
            raise ConfigError("--actors, --cpus-per-actor and --gpus-per-actor size Ray actors; add --ray")
        if self.ray is not None and not str(self.ray).strip():
            raise ConfigError("--ray got an empty address; pass --ray alone for a local Ray instance, or auto / host:port")
        if self.actors is not None and not (len(self.actors) == 2 and 1 <= self.actors[0] <= self.actors[1]):
            raise ConfigError(f"actors {self.actors!r}: pass N or MIN,MAX with 1 <= MIN <= MAX")
        if (self.cpus_per_actor is not None and self.cpus_per_actor <= 0) or \
                (self.gpus_per_actor is not None and self.gpus_per_actor < 0):
            raise ConfigError("--cpus-per-actor must be positive and --gpus-per-actor not negative")
        self._check_task()
        self._check_qdrant()
        self._check_lancedb()

    def _check_task(self) -> None:
        """Task "rerank" writes a parquet dataset of scores, locally: refuse what only embedding has."""
        if self.task not in TASKS:
            raise ConfigError(f"task {self.task!r} is not one of {', '.join(TASKS)}")
        if self.max_active_dims is not None and (isinstance(self.max_active_dims, bool)
                                                 or not isinstance(self.max_active_dims, int) or self.max_active_dims < 1):
            raise ConfigError(f"--max-active-dims must be a positive integer, got {self.max_active_dims!r}")
        if self.task != "rerank" and (self.query_column is not None or self.raw_scores):
            raise ConfigError("query_column and raw_scores are for scoring text pairs (engine score), not embedding")
        if self.task == "sparse":
            return self._check_sparse()
        if self.sparse_model is not None:
            self._check_hybrid()
        if self.task == "embed":
            return
        if not self.query_column:
            raise ConfigError("scoring text pairs needs a --query-column")
        if self.ray is not None:
            raise ConfigError("engine score runs locally only: --ray is not supported for scoring; drop --ray")
        if self.lancedb_table is not None:
            raise ConfigError("engine score writes a parquet dataset only: --lancedb-table is not supported for "
                              "scoring; drop it (LanceDB can open the parquet dataset as is)")
        if self.qdrant_collection is not None:
            raise ConfigError("engine score writes a parquet dataset only: --qdrant-collection is not supported for "
                              "scoring; drop it")
        if self.dtype != "float32":
            raise ConfigError(f"scores are stored as float32; dtype {self.dtype!r} is for embeddings")
        if {"score", "id"} & set(self.keep_columns):
            raise ConfigError("--keep-columns cannot name 'score' or 'id': the output already has those columns")

    def check_model_task(self) -> None:
        """Once the model's task is known (its manifest read): options of a sparse vector need one."""
        if self.task != "sparse" and self.sparse_model is None and self.max_active_dims is not None:
            raise ConfigError(f"--max-active-dims caps a sparse vector; --model {self.embedder.model} is not a sparse "
                              "encoder, so add --sparse-model SPLADE_MODEL, or drop --max-active-dims")

    def _check_sparse(self) -> None:
        """--model is a sparse encoder: refuse the options that only shape dense embeddings, naming each."""
        model, cfg = self.embedder.model, self.embedder
        dense = [name for name, given in (("--dtype " + self.dtype, self.dtype != "float32"),
                                          ("--pooling " + str(cfg.pooling), cfg.pooling not in (None, "splade")),
                                          ("--normalize/--no-normalize", cfg.normalize is not None),
                                          ("--long-text chunk", cfg.long_text == "chunk"),
                                          ("--index", self.index)) if given]
        if dense:
            raise ConfigError(f"{model} is a sparse encoder (task 'sparse'): {', '.join(dense)} only apply to dense "
                              f"embeddings ({SPARSE_OPTIONS}); drop {'them' if len(dense) > 1 else 'it'}")
        if self.sparse_model is not None:
            raise ConfigError(f"--model {model} is already a sparse encoder (task 'sparse'); for dense and sparse "
                              "vectors in one job pass the dense model as --model and the SPLADE one as --sparse-model")
        self._check_sparse_sinks(f"a sparse encoder (--model {model})")

    def _check_hybrid(self) -> None:
        if self.sparse_model is not None and not str(self.sparse_model).strip():
            raise ConfigError("--sparse-model got an empty path (an unset variable?); pass a SPLADE model folder or export")
        self._check_sparse_sinks(f"--sparse-model {self.sparse_model}")
        if "sparse" in self.keep_columns:
            raise ConfigError("--keep-columns cannot name 'sparse': the output already has that column")

    def _check_sparse_sinks(self, what: str) -> None:
        """Sparse vectors are written by the local runner into parquet parts (Ray actors and the LanceDB sink write
        dense embeddings only)."""
        if self.ray is not None:
            raise ConfigError(f"{what}: sparse vectors are embedded by the local runner only, --ray is not supported "
                              "with a sparse model; drop --ray (one process uses every core)")
        if self.lancedb_table is not None:
            raise ConfigError(f"{what}: sparse vectors are written to a parquet dataset only, --lancedb-table is not "
                              "supported with a sparse model; drop it")
        if {"sparse", "id"} & set(self.keep_columns):
            raise ConfigError("--keep-columns cannot name 'sparse' or 'id': the output already has those columns")

    @property
    def pair_columns(self) -> tuple[str, str] | None:
        """(query column, text column) for task "rerank", else None."""
        return (self.query_column, self.text_column) if self.task == "rerank" else None

    def _check_lancedb(self) -> None:
        """Refuse the options that make no sense with (or without) --lancedb-table, naming the fix."""
        if self.lancedb_table is None:
            if self.index:
                raise ConfigError("--index builds a LanceDB vector index; add --lancedb-table NAME (a parquet dataset "
                                  "has no index)")
            return
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", self.lancedb_table):
            raise ConfigError(f"--lancedb-table {self.lancedb_table!r}: a LanceDB table name holds only letters, "
                              "digits, '_', '-' and '.', and does not start with '.' or '-'")
        if self.ray is not None:
            raise ConfigError("--lancedb-table cannot go with --ray (Ray actors write parquet parts); drop --ray, or "
                              "write a parquet dataset with --ray and open it with LanceDB, which reads it as is")
        if self.allow_duplicate_ids:
            raise ConfigError("--allow-duplicate-ids cannot go with --lancedb-table: rows are upserted by id, so each "
                              "id is in the table once; drop the flag, or write a parquet dataset")
        if self.index and self.dtype not in ("float32", "float16"):
            raise ConfigError(f"--index needs --dtype float32 or float16 (LanceDB indexes float vectors), not "
                              f"{self.dtype}; drop --index or change --dtype")

    def _check_qdrant(self) -> None:
        """Refuse the options that make no sense with --qdrant-collection, naming the fix."""
        if self.qdrant_collection is None:
            return
        if self.lancedb_table is not None:
            raise ConfigError("--qdrant-collection and --lancedb-table each name where the rows go; pass one of them")
        if self.index:
            raise ConfigError("--index builds a LanceDB vector index; a Qdrant collection is indexed by Qdrant itself "
                              "(local mode searches exactly, a server builds HNSW); drop --index")
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", self.qdrant_collection):
            raise ConfigError(f"--qdrant-collection {self.qdrant_collection!r}: a collection name holds only letters, "
                              "digits, '_', '-' and '.', and does not start with '.' or '-'")
        if self.ray is not None:
            raise ConfigError("--qdrant-collection cannot go with --ray (Ray actors write parquet parts, and Qdrant's "
                              "local mode allows one writer); drop --ray")
        if self.allow_duplicate_ids:
            raise ConfigError("--allow-duplicate-ids cannot go with --qdrant-collection: points are upserted by id, so "
                              "each id is in the collection once; drop the flag, or write a parquet dataset")
        if self.dtype != "float32":
            raise ConfigError(f"--qdrant-collection stores float32 vectors, not --dtype {self.dtype}; drop --dtype "
                              "(Qdrant quantizes a collection itself: its quantization_config)")

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (for the ledger and _SUCCESS)."""
        d = dataclasses.asdict(self)
        d["keep_columns"] = list(self.keep_columns)
        d["actors"] = list(self.actors) if self.actors else None
        return d
