"""The first-use export cache: entry names, the .index of cheap keys, when an entry may be used, and its lock.

An entry is the folder `<model folder name>-<precision>-<key>`, key = sha256 of the model folder's content hash and the
export options, and is used only when its manifest says it was made from that content with those options, and its
files have their recorded sizes (with verify, their recorded sha256). The .index maps a cheap key (the folder's real
path and each file's name, size and mtime, plus the options) to the entry it led to and the content hash it was made
from: an index record is followed only to the entry that content gives, for that same folder path. What stays trusted
is that a folder with the same names, sizes and mtimes holds the same bytes; verify (the verify_cache option) hashes
the folder and the entry's files instead.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from export import ExportError, read_manifest
from export.manifest import MANIFEST, file_problem, write_json_atomic

from ..errors import ConfigError
from ..filelock import lock_file

INDEX = ".index"  # cache/.index/<cheap key>.json -> {"target": entry name, "model": real path, "content_hash": ...}
CACHE_SETTING = ("set EMBEDDING_ENGINE_CACHE, or pass --cache-dir (cache_dir= in Python), to a writable folder, "
                 "or pass an export folder ('engine export MODEL OUT_DIR') instead of the model folder")


def entry_name(folder_name: str, content_hash: str, options: dict) -> str:
    """The cache entry of a model folder's content exported with options."""
    key = hashlib.sha256(json.dumps({"content_hash": content_hash, **options}, sort_keys=True).encode()).hexdigest()[:16]
    return f"{folder_name}-{options['precision']}-{key}"


def cheap_key(path: Path, options: dict) -> str:
    """sha256 of the folder's real path and each non-hidden file's relative name, size and mtime, plus the options."""
    root = path.resolve()
    digest = hashlib.sha256(json.dumps([str(root), options], sort_keys=True).encode())
    for file in sorted(p for p in root.rglob("*") if p.is_file() and not any(x.startswith(".") for x in p.relative_to(root).parts)):
        st = file.stat()
        digest.update(f"\n{file.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:32]


def entry_problem(target: Path, content_hash: str, options: dict, hashes: bool = False) -> str | None:
    """Why the entry target cannot serve this content with these options (None: it can). hashes: check every file's
    sha256 too, not only its size."""
    if target.is_symlink() or not target.is_dir():
        return "it is not a folder" if target.exists() or target.is_symlink() else "it is not there"
    if not (target / MANIFEST).is_file():
        return f"it has no {MANIFEST}"
    try:
        manifest = read_manifest(target)
    except ExportError:
        return f"its {MANIFEST} is unreadable or not marked valid"
    made_from = (manifest.get("source") or {}).get("content_hash")
    if made_from != content_hash:
        return f"it was made from other content (content hash {str(made_from)[:12]}..., the model folder's {content_hash[:12]}...)"
    recorded = manifest.get("options") or {}
    version = (manifest.get("tool_versions") or {}).get("embedding-engine")
    if any(recorded.get(k) != options[k] for k in ("pooling", "normalize", "max_length", "precision")) or version != options["exporter"]:
        return "it was exported with other options or by another version"
    return file_problem(target, manifest, hashes)


def indexed_entry(cache: Path, cheap: str, path: Path, options: dict) -> tuple[Path | None, str | None]:
    """(entry, None) when the index records an entry for this cheap key, the record leads where the content it names
    would, and that entry can serve it; else (None, why not, when there was a record). A record that is not followed
    is dropped (the caller then looks the content up)."""
    record_file = cache / INDEX / f"{cheap}.json"
    try:
        record = json.loads(record_file.read_text())
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError):
        record = None
    target, problem = _followed(cache, record, path, options)
    if target is None:
        with contextlib.suppress(OSError):
            record_file.unlink()
    return target, problem


def _followed(cache: Path, record, path: Path, options: dict) -> tuple[Path | None, str | None]:
    if not isinstance(record, dict) or not isinstance(record.get("content_hash"), str):
        return None, "its index record names no content hash"
    root = path.resolve()
    if record.get("model") != str(root) or record.get("target") != entry_name(root.name, record["content_hash"], options):
        return None, "its index record does not lead to this folder's export"
    target = cache / record["target"]
    problem = entry_problem(target, record["content_hash"], options)
    return (target, None) if problem is None else (None, f"{target}: {problem}")


def record_entry(cache: Path, cheap: str, path: Path, target: Path, content_hash: str) -> None:
    """Remember that this cheap key leads to target (best effort: a read-only cache hashes the folder next time)."""
    with contextlib.suppress(OSError):
        (cache / INDEX).mkdir(exist_ok=True)
        write_json_atomic(cache / INDEX / f"{cheap}.json",
                          {"target": target.name, "model": str(path.resolve()), "content_hash": content_hash})


@contextlib.contextmanager
def entry_lock(cache: Path, name: str) -> Iterator[None]:
    """Hold the entry's lock (two processes asking for the same model export it once); a cache that cannot be created
    or written is a ConfigError naming it and the setting that chose it."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        fh = open(cache / f".{name}.lock", "a+b")
    except OSError as err:
        raise ConfigError(f"the export cache {cache} cannot be written ({_why(cache, err)}); model folders are exported "
                          f"there on first use: {CACHE_SETTING}") from err
    with fh:
        lock_file(fh, blocking=True)
        yield  # closing the file releases the lock


def discard_entry(target: Path) -> None:
    """Remove a damaged entry (under its lock): renamed aside first, so no reader ever sees half of it."""
    for stale in target.parent.glob(f".{target.name}.damaged-*"):  # left by a process killed while removing
        shutil.rmtree(stale, ignore_errors=True)
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        aside = target.with_name(f".{target.name}.damaged-{os.getpid()}")
        os.replace(target, aside)
        shutil.rmtree(aside, ignore_errors=True)


def _why(cache: Path, err: OSError) -> str:
    """The reason a cache folder cannot be written, naming a file that stands where a folder should."""
    for part in (cache, *cache.parents):
        if part.exists():
            return f"{part} is a file, not a folder" if not part.is_dir() else (err.strerror or str(err))
    return err.strerror or str(err)
