"""Duplicate-id detection over any number of rows with bounded memory.

Each id becomes a 64-bit key: integer ids through the splitmix64 finalizer (a bijection, so no collisions), other ids
through Python's hash (SipHash) and then the same mixer. Keys are sorted in runs of RUN_KEYS and spilled to .npy files;
the check then walks key buckets (by top bits) so no more than about RUN_KEYS keys sit in memory at once: 8 bytes per
id on disk (800 MB for 100M ids), about 32 MB in memory. Keys seen twice are candidates; the caller confirms them with
a second pass over the real ids (a hash collision is not a duplicate).
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa

RUN_KEYS = 4_000_000


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Bijective 64-bit mixer (wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64, copy=True)
        z += np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def id_keys(ids: pa.Array) -> np.ndarray:
    """64-bit keys of an id array (no nulls)."""
    if pa.types.is_dictionary(ids.type):
        ids = ids.dictionary_decode()
    if pa.types.is_unsigned_integer(ids.type):  # uint64 ids >= 2**63 do not fit int64
        raw = ids.cast(pa.uint64()).to_numpy(zero_copy_only=False)
    elif pa.types.is_integer(ids.type):
        raw = ids.cast(pa.int64()).to_numpy(zero_copy_only=False).view(np.uint64)
    else:
        raw = np.fromiter((hash(v) for v in ids.to_pylist()), dtype=np.int64, count=len(ids)).view(np.uint64)
    return _splitmix64(raw)


class KeySpill:
    """Collect keys, spill sorted runs to a temporary folder, then report keys that occur more than once."""

    def __init__(self, parent: Path | None = None) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix=".engine-idcheck-", dir=parent))
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._runs: list[Path] = []
        self.total = 0

    def add(self, keys: np.ndarray) -> None:
        self._pending.append(keys)
        self._pending_n += len(keys)
        self.total += len(keys)
        if self._pending_n >= RUN_KEYS:
            self._spill()

    def _spill(self) -> None:
        if not self._pending_n:
            return
        run = np.sort(np.concatenate(self._pending))
        path = self._dir / f"run-{len(self._runs):06d}.npy"
        np.save(path, run)
        self._runs.append(path)
        self._pending, self._pending_n = [], 0

    def duplicates(self, limit: int = 1000) -> np.ndarray:
        """Up to limit keys that were added more than once."""
        self._spill()
        runs = [np.load(p, mmap_mode="r") for p in self._runs]
        buckets = 1
        while self.total // buckets > RUN_KEYS:
            buckets *= 2
        shift = np.uint64(64 - buckets.bit_length() + 1) if buckets > 1 else None
        found: list[np.ndarray] = []
        for b in range(buckets):
            if shift is None:
                parts = [np.asarray(r) for r in runs]
            else:
                lo, hi = np.uint64(b) << shift, (np.uint64(b + 1) << shift) if b + 1 < buckets else None
                parts = []
                for r in runs:
                    i = np.searchsorted(r, lo)
                    j = np.searchsorted(r, hi) if hi is not None else len(r)
                    parts.append(np.asarray(r[i:j]))
            if not parts:
                continue
            keys = np.sort(np.concatenate(parts))
            same = keys[1:] == keys[:-1]
            if same.any():
                found.append(np.unique(keys[1:][same]))
                if sum(len(f) for f in found) >= limit:
                    break
        return np.concatenate(found)[:limit] if found else np.empty(0, dtype=np.uint64)

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "KeySpill":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
