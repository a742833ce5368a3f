"""The ledger of an output folder: an append-only JSON Lines file, each record fsynced, listing finished parts.

Record kinds: 'job' (first: fingerprint, options, input scan), 'calibration' (int8 ranges), 'part' (one finished part;
for a LanceDB table, with the digest of the ids it upserted).
A torn last line (kill -9 during an append) is dropped on open. The ledger is also the folder's lock (flock), so two
runs never write one output.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from ..errors import OutputError
from ..filelock import lock_file

LEDGER = "_ledger.jsonl"
SUCCESS = "_SUCCESS"
LEDGER_VERSION = 2  # 2: the identity holds a content digest per input file


def fingerprint(identity: dict) -> str:
    """sha256 of the identity dict: everything that decides which rows go where and what their vectors are."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def identity_diff(old: dict, new: dict) -> list[str]:
    """'key: old -> new' for every identity field that differs."""
    keys = sorted(set(old) | set(new))
    return [f"{k}: {_short(old.get(k))} -> {_short(new.get(k))}" for k in keys if old.get(k) != new.get(k)]


def _short(v) -> str:
    s = json.dumps(v, sort_keys=True, default=str)
    return s if len(s) <= 80 else s[:77] + "..."


def read_job(folder: Path) -> dict | None:
    """The job record of the ledger in folder, read without locking it (None: no ledger, or no job recorded yet)."""
    try:
        lines = (Path(folder) / LEDGER).read_bytes().splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a torn last line
            continue
        if isinstance(record, dict) and record.get("kind") == "job":
            return record
    return None


class Ledger:
    """Open (and lock) the ledger in folder; records holds every complete record in order."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LEDGER
        self._fh = open(self.path, "a+b")
        if not lock_file(self._fh, blocking=False):
            self._fh.close()
            raise OutputError(f"{folder} is being written by another engine embed (its ledger is locked); "
                              "wait for it or choose another output") from None
        self._lock = threading.Lock()
        self.records = self._load()

    def _load(self) -> list[dict]:
        self._fh.seek(0)
        data = self._fh.read()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a torn append: drop it so the next record starts on its own line
            self._fh.truncate(end)
            os.fsync(self._fh.fileno())
        records = []
        for line in data[:end].splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # only a torn line can be invalid; ignore it
                continue
        return records

    @property
    def job(self) -> dict | None:
        return next((r for r in self.records if r.get("kind") == "job"), None)

    @property
    def calibration(self) -> dict | None:
        return next((r for r in self.records if r.get("kind") == "calibration"), None)

    def parts(self) -> dict[int, dict]:
        """Finished parts by index (a later record of the same part wins)."""
        return {r["part"]: r for r in self.records if r.get("kind") == "part"}

    def append(self, record: dict) -> None:
        """Append one record and fsync it before returning (thread-safe)."""
        with self._lock:
            self._fh.seek(0, os.SEEK_END)
            self._fh.write(json.dumps(record, sort_keys=True).encode() + b"\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self.records.append(record)

    def reset(self) -> None:
        """Empty the ledger (a fresh start in a folder whose ledger held no job record)."""
        self._fh.truncate(0)
        os.fsync(self._fh.fileno())
        self.records = []

    def close(self) -> None:
        self._fh.close()  # releases the lock
