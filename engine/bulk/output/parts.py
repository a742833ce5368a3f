"""Write output parts: Arrow schema, embedding dtypes, and the temp-file / fsync / rename protocol.

A part is written to `.part-00012.parquet.tmp` (hidden, so dataset readers never list it), fsynced, renamed to
`part-00012.parquet`, the folder fsynced; only then does the pipeline record it in the ledger. `_SUCCESS` is written
last, atomically.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from export.manifest import write_json_atomic

from ...runtime.postprocess import quantize

PART_PREFIX = "part-"
METADATA_KEY = b"embedding_engine"


def part_name(index: int) -> str:
    return f"{PART_PREFIX}{index:05d}.parquet"


def tmp_name(index: int) -> str:
    return f".{part_name(index)}.tmp"


def embedding_type(dtype: str, dim: int) -> pa.DataType:
    """fixed_size_list<float32|float16|int8>[dim], or fixed_size_list<uint8>[ceil(dim/8)] of packed bits for ubinary."""
    if dtype == "ubinary":
        return pa.list_(pa.uint8(), (dim + 7) // 8)
    value = {"float32": pa.float32(), "float16": pa.float16(), "int8": pa.int8()}[dtype]
    return pa.list_(value, dim)


def output_schema(id_type: pa.DataType, keep: pa.Schema, dtype: str, dim: int, metadata: dict) -> pa.Schema:
    """id, the kept columns, embedding; metadata JSON under the 'embedding_engine' key (identical in every part)."""
    fields = [pa.field("id", id_type, nullable=False)] + list(keep) + [pa.field("embedding", embedding_type(dtype, dim), nullable=False)]
    return pa.schema(fields, metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()})


def score_schema(id_type: pa.DataType, keep: pa.Schema, num_labels: int, metadata: dict) -> pa.Schema:
    """engine score's parts: id, the kept columns, score (float32, or fixed_size_list<float32>[num_labels] for more
    than one label); metadata as output_schema's."""
    score = pa.float32() if num_labels == 1 else pa.list_(pa.float32(), num_labels)
    fields = [pa.field("id", id_type, nullable=False)] + list(keep) + [pa.field("score", score, nullable=False)]
    return pa.schema(fields, metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()})


def score_array(scores: NDArray[np.float32]) -> pa.Array:
    """(N,) scores as a float32 array; (N, L) as a fixed-size-list array of L float32 each."""
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    if scores.ndim == 1:
        return pa.array(scores, type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(pa.array(scores.reshape(-1), type=pa.float32()), scores.shape[1])


def convert(emb: NDArray[np.float32], dtype: str, ranges: NDArray[np.float32] | None) -> NDArray:
    """float32 (N, D) embeddings to the stored dtype.

    int8: sentence-transformers' scheme (per-dimension [min, max] mapped to 256 levels, minus 128) with fixed ranges;
    ubinary: np.packbits(x > 0) along the dimension (sentence-transformers 'ubinary'), dim/8 uint8 per vector.
    """
    if dtype == "float32":
        return emb.astype(np.float32, copy=False)
    if dtype == "float16":
        return emb.astype(np.float16)
    if dtype == "int8":
        return quantize(emb, "int8", ranges)
    return quantize(emb, "ubinary")


def calibrate_int8(emb: NDArray[np.float32]) -> NDArray[np.float32]:
    """(2, D) per-dimension [min, max] of a calibration window; fewer than 2 rows: symmetric +-max|x| (or +-1)."""
    if len(emb) >= 2:
        return np.vstack([emb.min(0), emb.max(0)]).astype(np.float32)
    m = float(np.abs(emb).max()) if len(emb) else 1.0
    m = m or 1.0
    return np.vstack([np.full(emb.shape[1], -m), np.full(emb.shape[1], m)]).astype(np.float32)


def schema_ranges(plan, ranges: NDArray[np.float32] | None) -> NDArray[np.float32] | None:
    """The int8 ranges for the output schema; int8 with no row ever embedded still needs some for the metadata."""
    if ranges is None and plan.job.dtype == "int8":
        return calibrate_int8(np.zeros((0, plan.dim), np.float32))
    return ranges


def embedding_array(values: NDArray, dtype: str, dim: int) -> pa.FixedSizeListArray:
    """(N, W) numpy array to a fixed-size-list Arrow array of the output type."""
    typ = embedding_type(dtype, dim)
    flat = pa.array(np.ascontiguousarray(values).reshape(-1), type=typ.value_type)
    return pa.FixedSizeListArray.from_arrays(flat, type=typ)


class PartWriter:
    """Stream row groups of one part into its temp file; commit() makes it visible atomically."""

    def __init__(self, folder: Path, index: int, schema: pa.Schema, tmp: str | None = None) -> None:
        self.folder = Path(folder)
        self.index = index
        self.tmp = self.folder / (tmp or tmp_name(index))  # a cluster worker names its own (one per attempt)
        self.final = self.folder / part_name(index)
        self.rows = 0
        # Embeddings: no dictionary (random floats only grow a dictionary, and slowly) and, for float32, byte-stream-
        # split, which lets zstd find the shared exponent bytes (about -19% on all-MiniLM-L6-v2 vectors, and faster).
        # The same for scores (engine score): float32, or lists of float32. Either column is the schema's last; a
        # sparse column (last, after the embedding with --sparse-model) splits its values the same way.
        values = value_columns(schema)
        split = [path for f in values for path in _split_paths(f)]
        self._writer = pq.ParquetWriter(self.tmp, schema, compression="zstd", compression_level=1,
                                        write_statistics=["id"],
                                        use_dictionary=[n for n in schema.names if n not in {f.name for f in values}],
                                        use_byte_stream_split=split or False)

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
            self.rows += table.num_rows

    def close(self) -> str:
        """Close and fsync the temp file, not yet visible; returns its name (publish_part makes it the part)."""
        self._writer.close()
        _fsync_path(self.tmp)
        return self.tmp.name

    def commit(self) -> tuple[str, int]:
        """Close, fsync, rename into place, fsync the folder; returns (file name, bytes)."""
        return publish_part(self.folder, self.close(), self.index)

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def value_columns(schema: pa.Schema) -> list[pa.Field]:
    """The vector columns of a part: its last (embedding, score or sparse), and the embedding before a sparse one."""
    last = schema.field(len(schema.names) - 1)
    if last.name == "sparse" and len(schema.names) > 1 and schema.names[-2] == "embedding":
        return [schema.field("embedding"), last]
    return [last]


def _split_paths(f: pa.Field) -> list[str]:
    """The float32 leaf columns of a vector column (what byte-stream-split is for)."""
    if pa.types.is_struct(f.type):  # sparse: indices (int32) and values (float32)
        return [f"{f.name}.{c.name}.list.element" for c in f.type if c.type.value_type == pa.float32()]
    listed = pa.types.is_fixed_size_list(f.type)
    element = f.type.value_type if listed else f.type
    return ([f"{f.name}.list.element" if listed else f.name]) if element == pa.float32() else []


def publish_part(folder: Path, tmp: str, index: int) -> tuple[str, int]:
    """Rename a closed, fsynced temp file to part `index`, fsync the folder; returns (file name, bytes)."""
    final = Path(folder) / part_name(index)
    os.replace(Path(folder) / tmp, final)
    _fsync_path(Path(folder))
    return final.name, final.stat().st_size


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_success(folder: Path, data: dict) -> None:
    """The _SUCCESS manifest, written atomically (temp + fsync + rename) as the very last step."""
    write_json_atomic(Path(folder) / "_SUCCESS", data)
    _fsync_path(Path(folder))
