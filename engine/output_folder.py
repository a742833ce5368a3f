"""The output folder of an embed job: what may be written where, stale-file cleanup, job identity, parquet metadata.

A folder is only ever written by engine embed: a foreign non-empty folder is refused (or emptied with --overwrite),
and on resume only the part files the ledger vouches for survive.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from export.manifest import manifest_hash

from .embedder import Embedder
from .errors import OutputError
from .job import EmbedJob
from .ledger import LEDGER, LEDGER_VERSION, Ledger
from .readers import InputFile
from .writer import PART_PREFIX

ENGINE_VERSION = "0.1.0"


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


def job_identity(job: EmbedJob, embedder: Embedder, files: list[InputFile]) -> dict:
    """Everything that decides which rows land in which part and what their vectors are (not device or batching)."""
    paths = [f.path.resolve() for f in files]
    root = Path(os.path.commonpath(paths)) if len(paths) > 1 else paths[0].parent
    cfg = embedder.config
    stride = (cfg.chunk_stride if cfg.chunk_stride is not None else embedder.max_length // 8) if cfg.long_text == "chunk" else None
    return {
        "ledger_version": LEDGER_VERSION,
        "model_manifest_hash": manifest_hash(embedder.manifest),
        "model": embedder.manifest["source"]["model"],
        "max_length": embedder.max_length,
        "long_text": cfg.long_text,
        "chunk_stride": stride,
        "input": [[str(p.relative_to(root)), f.size] for p, f in zip(paths, files)],
        "text_column": job.text_column,
        "id_column": job.id_column,
        "keep_columns": list(job.keep_columns),
        "dtype": job.dtype,
        "on_bad_row": job.on_bad_row,
        "rows_per_part": job.rows_per_part,
    }


def build_metadata(job: EmbedJob, embedder: Embedder, identity: dict, ranges: NDArray[np.float32] | None) -> dict:
    """The JSON metadata every output part carries: model, pooling, dtype and, for int8, the quantization ranges."""
    m = embedder.manifest
    meta = {
        "engine_version": ENGINE_VERSION,
        "model": m["source"]["model"],
        "model_manifest_hash": identity["model_manifest_hash"],
        "architecture": m["architecture"],
        "dim": embedder.dim,
        "dtype": job.dtype,
        "pooling": m["pooling"],
        "normalize": m["normalize"],
        "precision": m["precision"],
        "max_length": embedder.max_length,
        "long_text": identity["long_text"],
        "chunk_stride": identity["chunk_stride"],
        "text_column": job.text_column,
        "id": job.id_column or "row number",
    }
    if job.dtype == "int8":
        meta["int8"] = {"scheme": "sentence-transformers int8: q = floor((x - min) / ((max - min) / 255)) - 128, clipped",
                        "ranges": np.asarray(ranges).tolist()}
    if job.dtype == "binary":
        meta["binary"] = "numpy.packbits(x > 0) along the dimension (sentence-transformers 'ubinary'), big-endian bits"
    return meta
