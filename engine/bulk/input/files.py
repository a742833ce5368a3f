"""The input files of a job: a file, a folder (searched recursively) or a glob, each with its format."""
from __future__ import annotations

import glob as globlib
from dataclasses import dataclass
from pathlib import Path

from ...errors import InputError, InputUsageError

_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".txt": "txt"}


@dataclass(frozen=True)
class InputFile:
    """One input file: where it is, how to read it, its size (part of the job fingerprint)."""

    path: Path
    format: str  # parquet | jsonl | csv | txt
    compressed: bool
    size: int

    @property
    def name(self) -> str:
        return str(self.path)


def format_of(path: Path) -> tuple[str, bool] | None:
    """(format, gzip-compressed) from the file name, or None for an unsupported name."""
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    if compressed:
        suffixes = suffixes[:-1]
    fmt = _SUFFIXES.get(suffixes[-1]) if suffixes else None
    if fmt is None or (compressed and fmt == "parquet"):
        return None
    return fmt, compressed


def list_inputs(spec: str) -> list[InputFile]:
    """The input files of a file, a folder (searched recursively) or a glob, sorted by path.

    Names starting with '.' or '_' are skipped inside folders (hidden files, _SUCCESS, Spark/Hive markers).
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        paths = sorted(p for p in path.rglob("*") if p.is_file() and format_of(p)
                       and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts))
        if not paths:
            raise InputError(f"{path} holds no .parquet, .jsonl, .jsonl.gz, .csv or .txt files")
    elif path.is_file():
        if format_of(path) is None:
            raise InputError(f"{path}: unsupported file type; use .parquet, .jsonl, .jsonl.gz, .ndjson, .csv or .txt (optionally .gz)")
        paths = [path]
    elif any(c in spec for c in "*?["):
        paths = sorted(Path(p) for p in globlib.glob(str(path), recursive=True) if Path(p).is_file() and format_of(Path(p)))
        if not paths:
            raise InputError(f"no supported input files match {spec!r}")
    else:
        raise InputUsageError(f"input {spec!r} does not exist")
    out = []
    for p in paths:
        fmt, compressed = format_of(p)
        out.append(InputFile(path=p, format=fmt, compressed=compressed, size=p.stat().st_size))
    return out
