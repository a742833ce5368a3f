"""Optional dependency groups: import a module of an extra, or raise MissingExtraError naming the pip command."""
from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtraError


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import module, which the [extra] group installs; feature says what needed it (for the message)."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        missing = getattr(err, "name", None) or module
        raise MissingExtraError(
            f"{feature} needs {missing!r}, which is not installed; install it with "
            f"pip install 'embedding-engine[{extra}]'") from err


def require_exporter(feature: str) -> None:
    """Check that the [export] extra (torch, transformers, onnx, onnxscript) is installed before exporting."""
    for module in ("torch", "transformers", "onnx", "onnxscript"):
        require(module, "export", feature)
