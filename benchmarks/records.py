"""The suite's records: appended to results.jsonl as they are measured (JSON-safe), and picked out by type."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


class Recorder:
    """Appends records to results.jsonl as they come (a crash keeps what was measured) and keeps them in memory."""

    def __init__(self, path: Path, log) -> None:
        self.path, self.log, self.records = path, log, []
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = path.open("w")

    def add(self, record: dict) -> dict:
        record = _clean(record)
        self.records.append(record)
        self.fh.write(json.dumps(record, sort_keys=True) + "\n")
        self.fh.flush()
        return record

    def skip(self, what: str, why: str) -> None:
        self.log(f"  skipped {what}: {why}")
        self.add({"type": "skipped", "what": what, "why": why})

    def close(self) -> None:
        self.fh.close()


def _clean(value):
    """JSON-safe: numpy scalars to Python, NaN / inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, Path):
        return str(value)
    return value


def select(records: list[dict], type_: str, **match) -> list[dict]:
    """The records of one type whose fields equal `match`."""
    return [r for r in records if r.get("type") == type_ and all(r.get(k) == v for k, v in match.items())]

