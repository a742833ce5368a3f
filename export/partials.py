"""The hidden `.OUT_DIR.partial-*` folders an export builds in, and the cleanup of those left by killed exports.

A running export holds an exclusive lock (flock) on `.lock` inside its partial folder; the kernel drops the lock when
the process dies, however it dies. The next export to the same OUT_DIR deletes every sibling partial whose lock it
can take (its owner is gone), and partials without a lock file (older versions, or a kill in the instant between
creating the folder and the lock) once they are an hour old.
"""
from __future__ import annotations

import time
from pathlib import Path

from .errors import OutputExistsError
from .paths import delete_output

try:
    import fcntl
except ImportError:  # Windows: no flock; partials without a live lock are only removed by age
    fcntl = None

LOCK = ".lock"
UNLOCKED_MAX_AGE_S = 3600


def partial_prefix(out_dir: Path) -> str:
    return f".{out_dir.name}.partial-"


def hold_partial(work: Path):
    """Lock work/.lock for the life of this export; returns the open file (None where flock is unavailable)."""
    if fcntl is None:
        return None
    fh = open(work / LOCK, "a+b")
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fh


def release_partial(work: Path, fh) -> None:
    """Drop the lock and its file, so the finished folder does not carry it."""
    if fh is not None:
        fh.close()
    (work / LOCK).unlink(missing_ok=True)


def _owner_is_gone(partial: Path) -> bool:
    lock = partial / LOCK
    if not lock.is_file() or fcntl is None:
        return time.time() - partial.stat().st_mtime > UNLOCKED_MAX_AGE_S
    with open(lock, "a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live export holds it
        return True


def remove_stale_partials(out_dir: Path) -> list[Path]:
    """Delete the partial folders of out_dir left by exports that no longer run; return them."""
    removed = []
    for partial in sorted(out_dir.parent.glob(partial_prefix(out_dir) + "*")):
        if partial.is_dir() and not partial.is_symlink() and _owner_is_gone(partial):
            delete_output(partial, looks_ours=lambda _p: True, what="stale partial export", error=OutputExistsError)
            removed.append(partial)
    return removed
