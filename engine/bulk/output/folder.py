"""The output folder of an embed job: what may be written where, and stale-file cleanup.

A folder is only ever written by engine embed: a foreign non-empty folder is refused (or emptied with --overwrite),
and on resume only the part files the ledger vouches for survive.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from export.paths import check_output_path, delete_output

from ...errors import OutputError
from ..input import InputFile
from ..ledger import LEDGER, SUCCESS, Ledger
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
    """Refuse an unsafe OUTPUT (export.paths: an empty path, the working directory or above, home, /, a folder holding
    the input), a file, or a non-empty folder not written by engine embed; with overwrite, empty an earlier output."""
    inputs = [f.path for f in files]
    check_output_path(out, reads=inputs, what="OUTPUT", error=OutputError)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file; OUTPUT must be a folder")
    if not out.is_dir():
        return
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    if overwrite:
        if (out / LEDGER).exists():
            Ledger(out).close()  # raises if another run holds the lock
        delete_output(out, reads=inputs, looks_ours=is_embed_output, what="OUTPUT", error=OutputError, contents_only=True)
        return
    if not is_embed_output(out):
        shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
        raise OutputError(f"{out} is not empty and was not written by engine embed (it holds {shown}); "
                          "choose another folder (--overwrite only replaces an earlier engine embed output)")


def is_embed_output(folder: Path) -> bool:
    """True for a folder written by engine embed (it holds the ledger or _SUCCESS)."""
    return (folder / LEDGER).is_file() or (folder / SUCCESS).is_file()


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
