"""Exclusive file locks that work on POSIX (fcntl) and Windows (msvcrt); blocking or not."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: msvcrt, imported where it is used
    fcntl = None


def lock_file(fh, blocking: bool = True) -> bool:
    """Lock an open file exclusively; False when non-blocking and another process holds it."""
    if fcntl is not None:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            return True
        except BlockingIOError:
            return False
    import msvcrt

    fh.seek(0)
    try:
        msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK if blocking else msvcrt.LK_NBLCK, 1)
        return True
    except OSError:
        return False


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on path (created if missing) for the with-block."""
    with open(path, "a+b") as fh:
        lock_file(fh, blocking=True)
        yield  # closing the file releases the lock
