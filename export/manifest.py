"""Write and read manifest.json, the contract between an export folder and the runtime."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .errors import ModelSourceError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
# What a model reads: single texts, or text pairs (cross-encoders), tokenized together with segment ids.
INPUT_KINDS = ("text", "pair")
# The heads the runtime knows, each reading one output of embed.onnx (a new head adds an entry and a post-processing
# function in engine/runtime/heads.py).
HEAD_OUTPUTS = {"pooled": "sentence_embedding", "tokens": "token_embeddings", "score": "scores", "sparse": "sparse_embedding"}
# What an export is for: "embed" (embed.onnx: pooled and token vectors) or "rerank" (score.onnx: a cross-encoder's
# logits for text pairs) or "sparse" (sparse.onnx: SPLADE vocabulary weights). Exports written before the field existed
# are embedders.
TASKS = {"embed": "embed.onnx", "rerank": "score.onnx", "sparse": "sparse.onnx"}


def model_task(manifest: dict) -> tuple[str, str]:
    """(task, the graph the runtime runs for it)."""
    task = manifest.get("task", "embed")
    return task, TASKS.get(task, "")


def model_io(manifest: dict) -> tuple[str, dict[str, str]]:
    """What an export reads and writes: its input kind and its heads (head name -> the embed.onnx output it reads).

    Exports written before these fields existed read single texts and have a head per known output they list.
    """
    if "head_outputs" in manifest:
        return manifest.get("input", "text"), dict(manifest["head_outputs"])
    outputs = manifest.get("outputs", {}).get("embed.onnx", [])
    return "text", {head: out for head, out in HEAD_OUTPUTS.items() if out in outputs}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON under a temporary name, fsync, then rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_manifest(folder: str | Path, require_valid: bool = True) -> dict:
    """Load an export folder's manifest; raise with the fix when it is missing or not marked valid."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise ModelSourceError(f"{folder} has no {MANIFEST}; export the model first with 'engine export MODEL {folder}'")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelSourceError(f"{path} is not valid JSON ({err}); re-export with 'engine export MODEL {folder} --overwrite'") from err
    if not isinstance(manifest, dict):
        raise ModelSourceError(f"{path} holds a JSON {type(manifest).__name__}, not an object; "
                               f"re-export with 'engine export MODEL {folder} --overwrite'")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelSourceError(f"{path}: format_version {manifest.get('format_version')!r}, expected {FORMAT_VERSION}; re-export with --overwrite")
    kind, heads = model_io(manifest)
    if manifest.get("task", "embed") not in TASKS:
        raise ModelSourceError(f"{path}: task {manifest.get('task')!r} is not something this version runs (tasks: "
                               f"{', '.join(TASKS)}); upgrade embedding-engine, or re-export with this one")
    if kind not in INPUT_KINDS or not heads or any(h not in HEAD_OUTPUTS for h in heads):
        raise ModelSourceError(f"{path}: input {kind!r} with heads {sorted(heads)} is not something this version runs "
                               f"(inputs: {', '.join(INPUT_KINDS)}; heads: {', '.join(HEAD_OUTPUTS)}); upgrade "
                               "embedding-engine, or re-export with this one")
    if require_valid and not manifest.get("valid"):
        failures = [f for rep in manifest.get("parity", {}).values() for o in rep.get("outputs", {}).values() for f in o.get("failures", [])]
        raise ModelSourceError(f"{folder} failed parity validation and is not marked valid ({'; '.join(failures) or 'no report'}); re-export it")
    return manifest


def verify_files(folder: str | Path, manifest: dict, hashes: bool = False) -> None:
    """Check the files the manifest vouches for: present, of the recorded size and, with hashes, of the recorded sha256.

    Sizes cost one stat per file, so every load checks them; hashes read every byte, so they are checked on request
    (and by callers when a file fails to load). Exports written before sizes were recorded are checked by presence.
    """
    problem = file_problem(folder, manifest, hashes)
    if problem:
        raise ModelSourceError(f"{problem}; the export is damaged; re-export with 'engine export MODEL {folder} --overwrite'")


def file_problem(folder: str | Path, manifest: dict, hashes: bool = False) -> str | None:
    """What verify_files would refuse, without the fix (the export cache rebuilds its own entries): the first file
    missing, of another size or, with hashes, of another sha256; None when every file checks out."""
    folder = Path(folder)
    sizes = manifest.get("file_sizes") or {}
    for name, digest in sorted((manifest.get("files") or {}).items()):
        path = folder / name
        if not path.is_file():
            return f"{path} is missing ({MANIFEST} lists it)"
        size = path.stat().st_size
        if name in sizes and size != sizes[name]:
            return f"{path} is {size} bytes, but {MANIFEST} records {sizes[name]}"
        if hashes and sha256_file(path) != digest:
            return f"{path} does not match the sha256 in {MANIFEST} ({digest[:12]}...)"
    return None


def manifest_hash(manifest: dict) -> str:
    """Stable hash of a manifest without its timestamps: what produced a set of embeddings."""
    stable = {k: v for k, v in manifest.items() if k not in ("created_at", "export_seconds")}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()
