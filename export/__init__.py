"""Exporter: Hugging Face encoders to validated, fused ONNX graphs."""
__version__ = "0.2.0"

from .errors import ExportError, ModelSourceError, OptionError, OutputExistsError, ParityError, UnsupportedArchitectureError  # noqa: E402
from .manifest import read_manifest  # noqa: E402
from .options import POOLING_MODES, PRECISIONS, ExportOptions  # noqa: E402

__all__ = [
    "export_model", "ExportOptions", "read_manifest", "POOLING_MODES", "PRECISIONS", "ExportError",
    "ModelSourceError", "OptionError", "OutputExistsError", "ParityError", "UnsupportedArchitectureError",
]


def __getattr__(name: str):
    """Import export_model (and with it torch) only when asked: running an exported model needs neither."""
    if name == "export_model":
        from .api import export_model

        return export_model
    raise AttributeError(f"module 'export' has no attribute {name!r}")
