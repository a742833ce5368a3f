"""Typed runtime errors; only the CLI turns them into click exceptions."""
from export.errors import ExportError


class EngineError(Exception):
    """Base class for every runtime error."""


class ProviderUnavailableError(EngineError):
    """The requested execution provider could not be used."""


class ModelFolderError(EngineError):
    """A model or export folder is missing or unusable."""


class InputError(EngineError):
    """Bad input data (file, row or field), with where and how to fix it."""


class OutputError(EngineError):
    """The output location conflicts with the job (different options, foreign files)."""


USER_ERRORS = (EngineError, ExportError)
