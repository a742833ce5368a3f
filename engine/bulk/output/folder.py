"""The output folder of an embed job: what may be written where, and stale-file cleanup.

A folder is only ever written by engine embed: a foreign non-empty folder is refused (or emptied with --overwrite),
and on resume only the part files the ledger vouches for survive.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ...errors import OutputError
from ..ledger import LEDGER, Ledger
from ..readers import InputFile
from .parts import PART_PREFIX


def exclude_output(spec: str, files: list[InputFile], out: Path) -> list[InputFile]:
    """The input files that do not lie inside OUTPUT; refuse an input folder or glob that is all inside it."""
    if Path(spec).is_file():
        return files
    # An OUTPUT inside an input folder (or glob): its own parts are never input (the input would grow every run).
    outside = [f for f in files if out.resolve() not in f.path.resolve().parents]
    if not outside:
        raise OutputError(f"the input {spec} lies inside OUTPUT {out}; choose an output folder outside the input")
    return outside


def prepare_folder(out: Path, files: list[InputFile], overwrite: bool) -> None:
    """Refuse a file, or a non-empty folder not written by engine embed, unless overwrite; with overwrite, empty it."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file; OUTPUT must be a folder")
    resolved = out.resolve()
    for f in files:
        if resolved in f.path.resolve().parents:
            raise OutputError(f"the input file {f.name} lies inside OUTPUT {out}; choose an output folder outside the input")
    if not out.is_dir():
        return
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    if overwrite:
        if (out / LEDGER).exists():
            Ledger(out).close()  # raises if another run holds the lock
        for p in out.iterdir():
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        return
    if LEDGER not in entries:
        shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
        raise OutputError(f"{out} is not empty and was not written by engine embed (it holds {shown}); "
                          "choose another folder, or pass --overwrite to delete its contents")


def clean_stale(out: Path, done: dict[int, dict]) -> set[int]:
    """Remove temp files and part files the ledger does not vouch for; return the parts whose files check out."""
    keep = set()
    for k, rec in done.items():
        if rec["file"] is None:
            keep.add(k)
        elif (out / rec["file"]).is_file() and (out / rec["file"]).stat().st_size == rec["bytes"]:
            keep.add(k)
    valid_files = {done[k]["file"] for k in keep if done[k]["file"]}
    for p in out.iterdir():
        name = p.name
        if (name.startswith(f".{PART_PREFIX}") and name.endswith(".tmp")) or name.startswith("._SUCCESS.tmp"):
            p.unlink()
        elif name.startswith(PART_PREFIX) and name.endswith(".parquet") and name not in valid_files:
            p.unlink()
        elif name.startswith(".engine-idcheck-") and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
    return keep
