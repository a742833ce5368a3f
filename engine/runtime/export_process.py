"""Run a first-use export in a child process, so the caller never imports torch (a server whose model was exported on
first use kept about 1 GB of torch loaded for its whole life).

The parent starts a fresh interpreter (with the parent's sys.path) running child(), writes the ExportOptions fields to
its stdin as JSON, and reads JSON lines from its stdout: {"log": line} while the export runs, then {"error": {...}} if
it failed. In the child, fd 1 is pointed at stderr once the protocol has its own copy, so a library's print never
reaches the pipe. An ExportError or EngineError comes back as the same class with the same message (and report, for a
parity miss); anything else, or a child that dies without a word, as a ModelFolderError naming what happened.
A process that has imported torch already exports in-process: there is nothing left to keep out of it.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from export import errors as export_errors

from .. import errors

_ERROR_MODULES = {"export.errors": export_errors, "engine.errors": errors}
# The child imports what the parent would: it starts with the parent's sys.path (argv[1]).
_CHILD = "import json, sys; sys.path[:] = json.loads(sys.argv[1]); from engine.runtime.export_process import child; child()"


def run_export(options, log) -> None:
    """export_model(options) (an ExportOptions) in a child process; in this one when it has imported torch already
    (a test session, a notebook that also trains): a child would only add its start-up."""
    if "torch" in sys.modules:
        from export import export_model

        export_model(options, log=log)
    else:
        export_in_child(options.to_dict(), log)


def export_in_child(options: dict, log) -> None:
    """export_model(ExportOptions(**options)) in a child process; log receives its progress lines."""
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(sys.path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, encoding="utf-8", errors="replace")
    failure = None
    try:
        proc.stdin.write(json.dumps(options))
        proc.stdin.close()
        for line in proc.stdout:
            message = _message(line)
            if "error" in message:
                failure = message["error"]
            elif "log" in message:
                log(message["log"])
        status = proc.wait()
    finally:
        if proc.poll() is None:  # the caller was interrupted: the export stops with it
            proc.kill()
            proc.wait()
    if failure is not None:
        raise _rebuilt(failure, options["model"])
    if status != 0:
        how = f"killed by signal {signal.Signals(-status).name}" if status < 0 else f"exit status {status}"
        raise errors.ModelFolderError(
            f"the export of {options['model']} into {options['out_dir']} stopped without a result ({how}; out of "
            f"memory?); run 'engine export {options['model']} OUT_DIR' to see the exporter's own output")


def child() -> None:
    """The child's side: read the options, export, report an error as one JSON line."""
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything else written to stdout goes to stderr

    def send(**message) -> None:
        protocol.write(json.dumps(message, default=str) + "\n")
        protocol.flush()

    try:
        options = json.loads(sys.stdin.read())
        from ..extras import require_exporter

        require_exporter(f"exporting {options['model']} to ONNX")
        from export import ExportOptions, export_model

        export_model(ExportOptions(**options), log=lambda line: send(log=str(line)))
    except BaseException as err:  # noqa: BLE001 - every failure goes back to the parent, typed
        send(error=_described(err))
        protocol.close()
        os._exit(1)
    protocol.close()


def _described(err: BaseException) -> dict:
    """An error as JSON: its class (module and name), message and, if it has one, report."""
    described = {"module": type(err).__module__, "name": type(err).__name__, "message": str(err)}
    if hasattr(err, "report"):
        described["report"] = err.report
    return described


def _rebuilt(described: dict, model: str) -> Exception:
    """The child's error as the same class with the same message and report, when it is one of ours."""
    cls = getattr(_ERROR_MODULES.get(described.get("module")), str(described.get("name")), None)
    if isinstance(cls, type) and issubclass(cls, (export_errors.ExportError, errors.EngineError)):
        err = cls.__new__(cls)
        Exception.__init__(err, described.get("message", ""))
        if "report" in described:
            err.report = described["report"]
        return err
    return errors.ModelFolderError(
        f"exporting {model} failed ({described.get('name')}: {described.get('message')}); run "
        f"'engine export {model} OUT_DIR' to see the exporter's own output")


def _message(line: str) -> dict:
    try:
        message = json.loads(line)
    except ValueError:
        return {"log": line.rstrip("\n")}
    return message if isinstance(message, dict) else {"log": line.rstrip("\n")}

