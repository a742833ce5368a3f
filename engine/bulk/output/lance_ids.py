"""An order-independent digest of a table's ids, so a finished LanceDB table whose ids were changed in place (same row
count) is never taken for complete.

Each id becomes a 64-bit key, the same in every process: integers through the splitmix64 finalizer, other ids
(strings, binary; anything else as its string form) through a polynomial hash of their bytes, mixed the same way. The
digest is the keys' sum mod 2**64 with the row count, so it depends on neither row order nor how the column is chunked
(the digests of disjoint sets add up to their union's), and it costs one pass over the id column alone, in numpy.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..idcheck import _splitmix64

_BASE = 0x100000001B3  # odd, so invertible mod 2**64
_BASE_INV = pow(_BASE, -1, 2**64)
_SLICE = 1 << 16  # ids hashed at a time (bounds the temporary arrays)


def ids_digest(ids: pa.ChunkedArray | pa.Array) -> dict:
    """{'rows': n, 'digest': 16 hex digits} of an id column without nulls."""
    chunks = ids.chunks if isinstance(ids, pa.ChunkedArray) else [ids]
    total, rows = np.uint64(0), 0
    with np.errstate(over="ignore"):
        for chunk in chunks:
            for start in range(0, len(chunk), _SLICE):
                keys = _keys(chunk.slice(start, _SLICE))
                total = total + np.add.reduce(keys, dtype=np.uint64)
                rows += len(keys)
    return {"rows": rows, "digest": f"{int(total):016x}"}


def add_digests(digests: list[dict]) -> dict:
    """The digest of the union of disjoint id sets, from theirs."""
    total = sum(int(d["digest"], 16) for d in digests) % 2**64
    return {"rows": sum(d["rows"] for d in digests), "digest": f"{total:016x}"}


def _keys(ids: pa.Array) -> np.ndarray:
    if pa.types.is_dictionary(ids.type):
        ids = ids.dictionary_decode()
    if pa.types.is_unsigned_integer(ids.type):
        return _splitmix64(ids.cast(pa.uint64()).to_numpy(zero_copy_only=False))
    if pa.types.is_integer(ids.type):
        return _splitmix64(ids.cast(pa.int64()).to_numpy(zero_copy_only=False).view(np.uint64))
    if not (pa.types.is_binary(ids.type) or pa.types.is_large_binary(ids.type) or pa.types.is_string(ids.type)
            or pa.types.is_large_string(ids.type)):
        ids = ids.cast(pa.large_string())
    return _bytes_keys(ids.cast(pa.large_binary()))


def _bytes_keys(ids: pa.Array) -> np.ndarray:
    """Key of each value: splitmix64(sum_j (b_j + 1) * BASE**j + length * BASE_INV), j counted from the value's start."""
    n = len(ids)
    _, offsets_buf, data_buf = ids.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64, count=n + 1, offset=ids.offset * 8)
    lo, hi = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(data_buf, dtype=np.uint8, count=hi - lo, offset=lo) if hi > lo else np.zeros(0, np.uint8)
    rel = offsets - lo
    powers = np.full(hi - lo + 1, _BASE, dtype=np.uint64)
    powers[0] = 1
    powers = np.cumprod(powers, dtype=np.uint64)  # BASE**j mod 2**64
    inverse = np.full(hi - lo + 1, _BASE_INV, dtype=np.uint64)
    inverse[0] = 1
    inverse = np.cumprod(inverse, dtype=np.uint64)
    prefix = np.zeros(hi - lo + 1, dtype=np.uint64)
    np.cumsum((data.astype(np.uint64) + np.uint64(1)) * powers[:-1], dtype=np.uint64, out=prefix[1:])
    h = (prefix[rel[1:]] - prefix[rel[:-1]]) * inverse[rel[:-1]]
    h += np.diff(rel).astype(np.uint64) * np.uint64(_BASE_INV)
    return _splitmix64(h)
