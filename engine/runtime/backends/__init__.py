"""Backends behind the runtime's Backend interface, and the one place that picks one.

  ort   onnxruntime on CPU or CUDA (the providers really used are checked, never assumed)
"""
from __future__ import annotations

from pathlib import Path

from ...errors import ModelFolderError, ProviderUnavailableError
from ..backend import Backend


def open_backend(folder: Path, graph: str, manifest: dict, device: str, threads: int | None) -> Backend:
    """A backend running `graph` of the export folder on device ('auto', 'cpu' or 'cuda', as the user asked).

    A graph file that fails to load is checked against the manifest's sha256, so the error names the damaged file
    instead of a parse error.
    """
    from export.manifest import verify_files

    from .ort import OrtBackend

    try:
        return OrtBackend.open(Path(folder) / graph, device, threads)
    except ProviderUnavailableError:
        raise
    except Exception as err:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...) for a damaged graph
        try:
            verify_files(folder, manifest, hashes=True)
        except Exception as damaged:  # noqa: BLE001 - export's ModelSourceError, named as the engine's error
            raise ModelFolderError(str(damaged)) from err
        raise ModelFolderError(f"{Path(folder) / graph} cannot be loaded by onnxruntime ({type(err).__name__}: {err}); "
                               f"re-export with 'engine export MODEL {folder} --overwrite'") from err


__all__ = ["Backend", "open_backend"]
