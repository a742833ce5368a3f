"""How an embed job's rows become Qdrant points (qdrant.py's QdrantSink), decided from the part schema alone.

| part column                                                  | in the collection                                  |
|--------------------------------------------------------------|----------------------------------------------------|
| id (int)                                                     | point id (Qdrant ids are unsigned; negatives refused) |
| id (string)                                                  | point id uuid5(POINT_NAMESPACE, id)                 |
| embedding fixed_size_list<float32>[dim]                      | named dense vector "dense", cosine distance        |
| sparse struct<indices: list<int32>, values: list<float32>> | named sparse vector "sparse" (no IDF modifier) |
| id and every other column (the kept ones)                    | payload, under their own names ("id": the original id) |

A column of the sparse type is recognized by its name and type, so a job whose rows carry one gets the sparse vector
with no other change. The qdrant_client models module is passed in (the sink imports it lazily).
"""
from __future__ import annotations

import uuid

import numpy as np
import pyarrow as pa

from ...errors import InputError, OutputError

DENSE = "dense"  # the named dense vector
SPARSE = "sparse"  # the named sparse vector
EMBEDDING_COLUMN = "embedding"
SPARSE_COLUMN = "sparse"
SPARSE_TYPE = pa.struct([pa.field("indices", pa.list_(pa.int32())), pa.field("values", pa.list_(pa.float32()))])
# string ids become uuid5(POINT_NAMESPACE, id): uuid.uuid5(uuid.NAMESPACE_URL, "embedding-engine:qdrant-point-id")
POINT_NAMESPACE = uuid.UUID("f61dda6d-7400-5f9c-bc38-c7f8d684aa02")
VECTOR_COLUMNS = (EMBEDDING_COLUMN, SPARSE_COLUMN)


def point_id(value) -> int | str:
    """The Qdrant point id of one original id: a non-negative integer as is, anything else uuid5 of its string form."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    return str(uuid.uuid5(POINT_NAMESPACE, str(value)))


def check_id_type(schema: pa.Schema) -> None:
    """Point ids come from integer or string ids only."""
    t = schema.field("id").type
    if not (pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t)):
        raise InputError(f"the id column holds {t} values; Qdrant point ids come from integer or string ids (strings "
                         "become UUIDv5); pass another --id-column, or none for row numbers")


def dense_size(schema: pa.Schema) -> int | None:
    """The dense vector's width, or None when the rows carry no dense embedding."""
    if EMBEDDING_COLUMN not in schema.names:
        return None
    t = schema.field(EMBEDDING_COLUMN).type
    if not (pa.types.is_fixed_size_list(t) and pa.types.is_float32(t.value_type)):
        raise OutputError(f"Qdrant stores float32 dense vectors; the job's {EMBEDDING_COLUMN!r} column is {t}; drop "
                          "--dtype (Qdrant quantizes vectors itself: a collection's quantization_config)")
    return t.list_size


def has_sparse(schema: pa.Schema) -> bool:
    """Whether the rows carry a sparse vector (the SPARSE_COLUMN, of SPARSE_TYPE)."""
    if SPARSE_COLUMN not in schema.names:
        return False
    t = schema.field(SPARSE_COLUMN).type
    if not t.equals(SPARSE_TYPE):
        raise OutputError(f"the job's {SPARSE_COLUMN!r} column is {t}; a sparse vector must be {SPARSE_TYPE}")
    return True


def vectors_wanted(schema: pa.Schema) -> dict:
    """{'dense': {'size': dim, 'distance': 'Cosine'} (when the rows carry one), 'sparse': [SPARSE] or []}: what the
    collection must be configured with, in plain values (for comparing with a collection and for _SUCCESS)."""
    size = dense_size(schema)
    return {"dense": {DENSE: {"size": size, "distance": "Cosine"}} if size is not None else {},
            "sparse": [SPARSE] if has_sparse(schema) else []}


def collection_config(models, schema: pa.Schema) -> dict:
    """create_collection's vectors_config and sparse_vectors_config for the job's rows."""
    wanted = vectors_wanted(schema)
    dense = {name: models.VectorParams(size=v["size"], distance=models.Distance.COSINE)
             for name, v in wanted["dense"].items()}
    sparse = {name: models.SparseVectorParams(modifier=None) for name in wanted["sparse"]}
    return {"vectors_config": dense, "sparse_vectors_config": sparse or None}


def vectors_found(info) -> dict:
    """vectors_wanted's form of a collection's configuration (get_collection's answer)."""
    params = info.config.params
    dense = params.vectors if isinstance(params.vectors, dict) else ({"": params.vectors} if params.vectors else {})
    return {"dense": {name: {"size": v.size, "distance": str(getattr(v.distance, "value", v.distance))}
                      for name, v in dense.items()},
            "sparse": sorted(params.sparse_vectors or {})}


def config_diff(found: dict, wanted: dict) -> list[str]:
    """What a collection's vectors lack or configure otherwise than the job's (empty: the same)."""
    diff = []
    for name, want in wanted["dense"].items():
        have = found["dense"].get(name)
        if have is None:
            diff.append(f"no dense vector {name!r}")
        elif have != want:
            diff.append(f"dense vector {name!r} is {have['size']} wide, {have['distance']} (the job's: {want['size']}, "
                        f"{want['distance']})")
    diff += [f"extra dense vector {n!r}" for n in found["dense"] if n not in wanted["dense"]]
    diff += [f"no sparse vector {n!r}" for n in wanted["sparse"] if n not in found["sparse"]]
    diff += [f"extra sparse vector {n!r}" for n in found["sparse"] if n not in wanted["sparse"]]
    return diff


def to_points(models, rows: pa.Table, id_column: str | None) -> list:
    """One PointStruct per row: id (see point_id), the dense and sparse vectors the rows carry, the payload."""
    ids = rows.column("id").to_pylist()
    if pa.types.is_integer(rows.schema.field("id").type):
        negative = [i for i in ids if i < 0]
        if negative:
            raise InputError(f"id {negative[0]} (--id-column {id_column!r}) is negative; Qdrant point ids are unsigned "
                             "integers or UUIDs; use non-negative or string ids (strings become UUIDv5)")
    vectors: list[dict] = [{} for _ in ids]
    if EMBEDDING_COLUMN in rows.schema.names:
        col = rows.column(EMBEDDING_COLUMN).combine_chunks()
        dense = col.flatten().to_numpy(zero_copy_only=False).reshape(len(ids), col.type.list_size).tolist()
        for v, d in zip(vectors, dense):
            v[DENSE] = d
    if SPARSE_COLUMN in rows.schema.names:
        for v, s in zip(vectors, rows.column(SPARSE_COLUMN).to_pylist()):
            if s is not None and s["indices"]:  # an empty sparse vector: the point has none
                v[SPARSE] = models.SparseVector(indices=s["indices"], values=s["values"])
    kept = [n for n in rows.schema.names if n not in VECTOR_COLUMNS and n != "id"]
    payloads = [{"id": i} for i in ids]
    for name in kept:
        for p, value in zip(payloads, rows.column(name).to_pylist()):
            p[name] = value
    return [models.PointStruct(id=point_id(i), vector=v, payload=p) for i, v, p in zip(ids, vectors, payloads)]
