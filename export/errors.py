"""Typed errors raised by the exporter; each message says what went wrong and how to fix it."""


class ExportError(Exception):
    """Base class for every exporter error."""


class ModelSourceError(ExportError):
    """The model folder or hub id cannot be loaded."""


class UnsupportedArchitectureError(ExportError):
    """The model's architecture is not one the exporter supports."""


class OptionError(ExportError):
    """Export options conflict with each other or with the model."""


class OutputExistsError(ExportError):
    """The output folder is not empty and --overwrite was not given."""


class ParityError(ExportError):
    """The exported graph missed a parity threshold against PyTorch."""

    def __init__(self, message: str, report: dict) -> None:
        super().__init__(message)
        self.report = report
