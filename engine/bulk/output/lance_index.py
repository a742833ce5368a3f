"""The ANN index `engine embed --lancedb-table NAME --index` builds at the end, chosen by the table's row count.

| rows              | index        | parameters                                                                 |
|-------------------|--------------|----------------------------------------------------------------------------|
| < 5,000           | none         | an exact (flat) search over so few rows is about as fast as an index       |
| 5,000 - 999,999   | IVF_HNSW_SQ  | 1 partition: one HNSW graph over 8-bit scalar-quantized vectors            |
| >= 1,000,000      | IVF_PQ       | about sqrt(rows) partitions, dim/16 sub-vectors (dim/8 when 16 does not divide it) |

LanceDB recommends one partition for HNSW on most tables (each partition is its own graph) and IVF_PQ, its disk-based
default, for large ones, where one HNSW graph would need too much memory to train. A width that 8 does not divide
cannot be split into efficient PQ sub-vectors: such large tables get IVF_HNSW_SQ with one partition per million rows.
Every index is trained for cosine distance, so queries must use the same: `.distance_type("cosine")`.
"""
from __future__ import annotations

import math

MIN_INDEX_ROWS = 5_000
PQ_ROWS = 1_000_000
DISTANCE = "cosine"


def index_plan(rows: int, dim: int) -> dict | None:
    """The create_index arguments for a table of `rows` vectors of width dim, or None when it is too small for one."""
    if rows < MIN_INDEX_ROWS:
        return None
    if rows < PQ_ROWS or dim % 8:
        return {"index_type": "IVF_HNSW_SQ", "distance_type": DISTANCE, "num_partitions": math.ceil(rows / PQ_ROWS)}
    return {"index_type": "IVF_PQ", "distance_type": DISTANCE, "num_partitions": round(math.sqrt(rows)),
            "num_sub_vectors": dim // 16 if dim % 16 == 0 else dim // 8}


def describe(plan: dict) -> str:
    """'IVF_PQ (1000 partitions, 24 sub-vectors, cosine)'."""
    parts = [f"{plan['num_partitions']} partition{'s' if plan['num_partitions'] != 1 else ''}"]
    if "num_sub_vectors" in plan:
        parts.append(f"{plan['num_sub_vectors']} sub-vectors")
    return f"{plan['index_type']} ({', '.join(parts + [plan['distance_type']])})"


def build_index(table, rows: int, dim: int, progress) -> tuple[dict, str]:
    """Build the index index_plan picks on the embedding column (replacing any); returns what was built (for _SUCCESS)
    and a line for the summary, which says so when the table is too small for one."""
    plan = index_plan(rows, dim)
    if plan is None:
        reason = (f"{rows:,} rows are fewer than {MIN_INDEX_ROWS:,}; an exact search over them is about as fast as an "
                  "index, so none was built")
        return {"index_type": None, "reason": reason}, f"index: none: {reason}"
    progress.message(f"--index: building {describe(plan)} over {rows:,} rows")
    create_index(table, plan)
    return plan, f"index: {describe(plan)} over {rows:,} rows; query it with .distance_type(\"{DISTANCE}\")"


def create_index(table, plan: dict) -> None:
    """Build the index an index_plan() describes on the embedding column, replacing any."""
    from lancedb.index import HnswSq, IvfPq  # HnswSq is LanceDB's IVF_HNSW_SQ

    if plan["index_type"] == "IVF_PQ":
        config = IvfPq(distance_type=plan["distance_type"], num_partitions=plan["num_partitions"],
                       num_sub_vectors=plan["num_sub_vectors"])
    else:
        config = HnswSq(distance_type=plan["distance_type"], num_partitions=plan["num_partitions"])
    table.create_index("embedding", config=config, replace=True)
