"""What one output part's rows add up to, and the ledger record that says a part is finished: one definition for the
local runner, the Ray actors and driver, the summary and the finishing checks."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields


@dataclass
class PartStats:
    """Counts over some rows of one part (a window, or the whole part)."""

    rows: int = 0  # rows written (embedded)
    input_rows: int = 0  # input rows covered, bad ones included
    skipped: int = 0  # bad rows dropped (--on-bad-row skip)
    emptied: int = 0  # bad rows embedded as '' (--on-bad-row empty)
    real_tokens: int = 0
    truncated: int = 0

    def add(self, other: "PartStats") -> None:
        for f in STATS:
            setattr(self, f, getattr(self, f) + getattr(other, f))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def of(cls, record: dict) -> "PartStats":
        """The counts of a ledger record (or any dict holding them)."""
        return cls(**{f: int(record[f]) for f in STATS})


STATS = tuple(f.name for f in fields(PartStats))


def part_record(part: int, rows_per_part: int, stats: PartStats, seconds: float, file: str | None, size: int,
                **extra) -> dict:
    """The ledger record of a finished part: its index, first row, counts, file (None: no rows) and size."""
    return {"kind": "part", "part": part, "first_row": part * rows_per_part, "seconds": round(seconds, 3),
            "file": file, "bytes": size, "committed_at": time.time()} | stats.to_dict() | extra


def total(parts: dict[int, dict], key: str) -> int:
    """One count summed over the ledger's part records."""
    return sum(p[key] for p in parts.values())
