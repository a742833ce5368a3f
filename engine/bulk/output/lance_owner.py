"""Whether a LanceDB table is the one an embed job wrote: proved by the table itself, not by the ledger beside it.

The table is created with a mark in its Arrow schema metadata (key 'engine_embed_job'): a token derived from the job
record of its ledger (the job's fingerprint and the moment its scan was recorded), so a table that someone else put
in place under the same name, or created again after dropping the engine's, carries no mark or another job's. LanceDB
keeps schema metadata through upserts, compaction, indexing and column changes. schema_diff names what differs when a
table's fields are not the ones the job writes.
"""
from __future__ import annotations

import hashlib
import json

import pyarrow as pa

MARK_KEY = b"engine_embed_job"


def job_mark(header: dict | None) -> str | None:
    """The mark of the job whose ledger record is header (None: no job recorded yet, so no table can be its)."""
    if not header or "fingerprint" not in header or "created_at" not in header:
        return None
    token = json.dumps([header["fingerprint"], header["created_at"]]).encode()
    return hashlib.sha256(token).hexdigest()[:32]


def table_mark(schema: pa.Schema) -> str | None:
    """The mark a table's schema carries, or None."""
    value = (schema.metadata or {}).get(MARK_KEY)
    return value.decode(errors="replace") if value is not None else None


def with_mark(schema: pa.Schema, mark: str) -> pa.Schema:
    """schema with the job's mark added to its metadata."""
    return schema.with_metadata(dict(schema.metadata or {}) | {MARK_KEY: mark.encode()})


def schema_diff(table: pa.Schema, job: pa.Schema, extra_ok: bool = False) -> list[str]:
    """What the table's fields lack, add (unless extra_ok) or type otherwise than the job's (empty: the same fields)."""
    have = {f.name: f.type for f in table}
    want = {f.name: f.type for f in job}
    missing = [n for n in want if n not in have]
    extra = [] if extra_ok else [f"{n} ({t})" for n, t in have.items() if n not in want]
    other = [f"{n} (table {have[n]}, job {t})" for n, t in want.items() if n in have and have[n] != t]
    return ([f"missing: {', '.join(missing)}"] if missing else []) + ([f"extra: {', '.join(extra)}"] if extra else []) \
        + ([f"different type: {', '.join(other)}"] if other else [])
