"""Build an export in a hidden sibling folder and rename it into place at the end: a killed export never looks
complete, and a failed one leaves nothing behind (see export/partials.py for the partial folders' locks)."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from .errors import OutputExistsError
from .manifest import MANIFEST
from .partials import hold_partial, partial_prefix, release_partial, remove_stale_partials
from .paths import delete_output


def is_export_output(folder: Path) -> bool:
    """True for a folder written by an export (it holds manifest.json)."""
    return (folder / MANIFEST).is_file()


@contextlib.contextmanager
def staged_folder(out_dir: Path, reads: list[Path]):
    """Yield a locked partial folder beside out_dir to build in. When the block ends normally (its manifest written),
    the earlier export at out_dir (if any) is deleted and the folder renamed to out_dir; on any error it is removed."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(out_dir)
    work = Path(tempfile.mkdtemp(prefix=partial_prefix(out_dir), dir=out_dir.parent))
    work.chmod(0o755)  # mkdtemp makes it private; an export folder is meant to be shared
    lock = hold_partial(work)
    try:
        yield work
        release_partial(work, lock)
        lock = None
        delete_output(out_dir, reads=reads, looks_ours=is_export_output, what="OUT_DIR", error=OutputExistsError)
        os.replace(work, out_dir)
    except BaseException:
        if lock is not None:
            release_partial(work, lock)
        shutil.rmtree(work, ignore_errors=True)
        raise
