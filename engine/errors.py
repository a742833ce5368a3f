"""One error tree for the engine. Each error's message says what went wrong and how to fix it.

Only the CLI (engine.cli.errors) and the server map these to exit codes or HTTP statuses.
"""
from export.errors import ExportError


class EngineError(Exception):
    """Base class for every engine error."""


class ConfigError(EngineError, ValueError):
    """An option value is invalid (the CLI exits 2, a usage error)."""


class MissingExtraError(EngineError, ImportError):
    """A feature needs an optional dependency group that is not installed; the message names the pip command."""


class ProviderUnavailableError(EngineError):
    """The requested execution provider could not be used."""


class ModelFolderError(EngineError):
    """A model or export folder is missing or unusable."""


class InputError(EngineError):
    """Bad input data (file, row or field), with where and how to fix it."""


class InputUsageError(InputError):
    """The command line names an input or a column that does not exist (the CLI exits 2, a usage error)."""


class MissingColumnError(InputUsageError):
    """A named column is absent from the input; the message lists the available ones."""


class OutputError(EngineError):
    """The output location conflicts with the job (different options, foreign files)."""


class ClusterError(EngineError):
    """A Ray cluster cannot be reached, or a Ray job failed; the message says how to fix it or resume."""


USER_ERRORS = (EngineError, ExportError)
USAGE_ERRORS = (ConfigError, InputUsageError)
