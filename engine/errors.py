"""One error tree for the engine. Each error's message says what went wrong and how to fix it.

Only the CLI (engine.cli.errors) and the server (engine.serve.errors) map these to exit codes or HTTP statuses. The
exporter (export/) has its own tree, ExportError; what it raises through the runtime (a first-use export, a damaged
export folder) reaches callers as the engine's ModelFolderError or ConfigError (engine.runtime.models.engine_errors),
with the exporter's error kept as __cause__. Only `engine export`, which calls the exporter directly, sees ExportError.
"""
from export.errors import ExportError


class EngineError(Exception):
    """Base class for every engine error."""


class ConfigError(EngineError, ValueError):
    """An option value is invalid, or one the chosen export cannot honour (the CLI exits 2, a usage error)."""


class UnsupportedError(EngineError, NotImplementedError):
    """A sentence-transformers method or attribute an Embedder cannot honour (it holds an ONNX export, not PyTorch
    modules); the message names what to use instead."""


class MissingExtraError(EngineError, ImportError):
    """A feature needs an optional dependency group that is not installed; the message names the pip command."""


class ProviderUnavailableError(EngineError):
    """The requested execution provider could not be used."""


class ModelFolderError(EngineError):
    """A model or export folder is missing, damaged or unusable, or its first-use export failed. report: the
    exporter's parity report when the export missed its parity bar (the CLI prints it)."""

    def __init__(self, message: str, report: dict | None = None) -> None:
        super().__init__(message)
        self.report = report


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
