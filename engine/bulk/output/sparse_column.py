"""The `sparse` column of engine embed's parts: one SPLADE vector per row as struct<indices: list<int32>, values:
list<float32>> (indices ascending, values the non-zero weights), the layout a Qdrant sparse vector and the readers
(pyarrow, DuckDB, Polars) take as is."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ...runtime.heads import SparseRow

SPARSE_COLUMN = "sparse"
SPARSE_TYPE = pa.struct([pa.field("indices", pa.list_(pa.int32())), pa.field("values", pa.list_(pa.float32()))])


def sparse_field() -> pa.Field:
    return pa.field(SPARSE_COLUMN, SPARSE_TYPE, nullable=False)


def sparse_array(rows: list[SparseRow]) -> pa.StructArray:
    """N rows of (indices (k,) int32 ascending, values (k,) float32) -> one StructArray of SPARSE_TYPE."""
    offsets = np.zeros(len(rows) + 1, dtype=np.int32)
    np.cumsum([len(idx) for idx, _ in rows], out=offsets[1:])
    idx = np.concatenate([np.asarray(i, dtype=np.int32) for i, _ in rows]) if rows else np.zeros(0, np.int32)
    val = np.concatenate([np.asarray(v, dtype=np.float32) for _, v in rows]) if rows else np.zeros(0, np.float32)
    off = pa.array(offsets, type=pa.int32())
    indices = pa.ListArray.from_arrays(off, pa.array(idx, type=pa.int32()), type=SPARSE_TYPE.field("indices").type)
    values = pa.ListArray.from_arrays(off, pa.array(val, type=pa.float32()), type=SPARSE_TYPE.field("values").type)
    return pa.StructArray.from_arrays([indices, values], fields=list(SPARSE_TYPE))
