"""Optional dependency groups: import a module of an extra, or raise MissingExtraError naming the pip command."""
from __future__ import annotations

import importlib
import importlib.util
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


EXPORTER_MODULES = ("torch", "transformers", "onnx", "onnxscript")  # what the [export] extra installs


def require_exporter(feature: str, load: bool = True) -> None:
    """Check that the [export] extra (torch, transformers, onnx, onnxscript) is installed before exporting. load=False
    only finds the modules (importlib.util.find_spec), for a process that exports in a child and must not import torch
    itself; the child then imports them for real."""
    for module in EXPORTER_MODULES:
        if load:
            require(module, "export", feature)
            continue
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise MissingExtraError(f"{feature} needs {module!r}, which is not installed; install it with "
                                    f"pip install 'embedding-engine[export]'")
