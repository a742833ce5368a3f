"""The one guarded way to pick and delete an output folder, shared by `engine export` and `engine embed`.

Every folder that --overwrite (or a finished export) replaces goes through delete_output, which refuses, with or
without --overwrite: an empty path, the working directory or a folder above it, the home directory, the filesystem
root, and a folder that holds what the job reads. A non-empty folder is only deleted when it looks like the tool's
own output (looks_ours).
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path


def _resolve(path: Path) -> Path:
    return Path(os.path.abspath(path)).resolve()


def check_output_path(path: str | os.PathLike, *, reads: Sequence[Path] = (), what: str = "OUTPUT",
                      error: type[Exception] = ValueError) -> Path:
    """Refuse an output location that must never be written over; return the path.

    reads: what the job reads (a model folder, input files); an output that holds any of them is refused.
    """
    raw = os.fspath(path)
    if not raw.strip():
        raise error(f"{what} is an empty path (an unset variable?); pass the folder to write to")
    target = _resolve(Path(raw).expanduser())
    cwd = _resolve(Path.cwd())
    if target == _resolve(Path.home()) or target == Path(target.anchor):
        raise error(f"{what} {raw!r} is the home directory or the filesystem root ({target}); pass a dedicated folder")
    if target == cwd or target in cwd.parents:
        raise error(f"{what} {raw!r} is the working directory or a folder above it ({target}); "
                    "pass a new or dedicated folder, e.g. ./out")
    for item in reads:
        item = _resolve(Path(item))
        if item == target or target in item.parents:
            raise error(f"{item}, which this job reads, lies inside {what} {raw!r}; choose an output folder that does "
                        "not hold the input")
    return Path(raw).expanduser()


def delete_output(path: str | os.PathLike, *, reads: Sequence[Path] = (), looks_ours: Callable[[Path], bool],
                  what: str = "OUTPUT", error: type[Exception] = ValueError, contents_only: bool = False) -> None:
    """Delete an output folder (or only its contents) after check_output_path; a foreign non-empty folder is refused.

    looks_ours(folder) says whether the folder was written by this tool (an engine embed ledger, an export manifest).
    """
    folder = check_output_path(path, reads=reads, what=what, error=error)
    if not folder.exists() and not folder.is_symlink():
        return
    if not folder.is_dir():
        raise error(f"{what} {folder} is a file, not a folder; pass a folder path")
    if folder.is_symlink() and not contents_only:
        raise error(f"{what} {folder} is a symbolic link (to {folder.resolve()}); pass the folder itself")
    entries = sorted(p.name for p in folder.iterdir())
    if entries and not looks_ours(folder):
        shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
        raise error(f"{what} {folder} is not empty and does not look like an output of this tool (it holds {shown}); "
                    "nothing was deleted: choose another folder, or empty it yourself")
    if not contents_only:
        shutil.rmtree(folder)
        return
    for p in folder.iterdir():
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
