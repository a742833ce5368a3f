"""Backends behind the runtime's Backend interface, and the one place that picks one.

  ort        onnxruntime on CPU or CUDA (the providers really used are checked, never assumed)
  openvino   OpenVINO on CPU, f32 or bf16 (export.ov_session compiles it, as the exporter's bf16 gate does)
  choice     which of them runs an export (the backend option, the export's precision, the CPU), and why
"""
from __future__ import annotations

import os
from pathlib import Path

from ...errors import MissingExtraError, ModelFolderError, ProviderUnavailableError
from ..backend import Backend
from .choice import OPENVINO_PIP, BackendChoice, choose_backend


def open_backend(folder: Path, graph: str, manifest: dict, device: str, threads: int | None,
                 choice: BackendChoice | None = None, cache_dir: Path | None = None) -> Backend:
    """A backend running `graph` of the export folder on device ('auto', 'cpu' or 'cuda', as the user asked).

    choice: what choose_backend answered (None: backend auto for the manifest's precision); cache_dir: where OpenVINO
    keeps compiled models (None: none). A graph file that fails to load is checked against the manifest's sha256,
    so the error names the damaged file instead of a parse error.
    """
    from export.manifest import verify_files

    choice = choice or choose_backend("auto", device, manifest["precision"])
    try:
        if choice.name == "openvino":
            try:
                from .openvino import OpenVinoBackend
            except ImportError as err:  # found by choose_backend, but it does not import (a broken install)
                raise MissingExtraError(f"the openvino backend cannot import openvino ({err}); reinstall it with "
                                        f"{OPENVINO_PIP}") from err
            # one cache folder per graph content (its sha256 in the manifest): a re-export at the same path never
            # meets the compiled blob of the graph it replaced
            digest = (manifest.get("files") or {}).get(graph, "")[:16] or "unhashed"
            return OpenVinoBackend.open(Path(folder) / graph, choice.precision, threads,
                                        _writable(cache_dir / digest if cache_dir else None))
        from .ort import OrtBackend

        return OrtBackend.open(Path(folder) / graph, device, threads)
    except (ProviderUnavailableError, MissingExtraError):
        raise
    except Exception as err:  # onnxruntime / OpenVINO raise their own types (InvalidProtobuf, Fail, ...) for a damaged graph
        try:
            verify_files(folder, manifest, hashes=True)
        except Exception as damaged:  # noqa: BLE001 - export's ModelSourceError, named as the engine's error
            raise ModelFolderError(str(damaged)) from err
        raise ModelFolderError(f"{Path(folder) / graph} cannot be loaded by {choice.name} ({type(err).__name__}: {err}); "
                               f"re-export with 'engine export MODEL {folder} --overwrite'") from err


def _writable(cache_dir: Path | None) -> Path | None:
    """cache_dir, created, when it can be written; else None (OpenVINO then compiles on every start)."""
    if cache_dir is None:
        return None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return cache_dir if os.access(cache_dir, os.W_OK) else None


__all__ = ["Backend", "BackendChoice", "choose_backend", "open_backend"]
