"""The `engine` command: a click group; each subcommand lives in engine/commands/ and only parses options."""
from __future__ import annotations

import functools

import click

from .errors import USER_ERRORS


def user_errors(fn):
    """Turn the engine's typed errors into a clean message and exit code 1 (click uses 2 for usage errors)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as err:
            raise click.ClickException(str(err)) from err
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="embedding-engine")
def main() -> None:
    """ONNX-accelerated batch embedding engine."""


def _register() -> None:
    """Attach every subcommand; imported lazily so `engine --help` stays fast."""
    from .commands import export as export_cmd

    main.add_command(export_cmd.export)
    for name in ("embed", "inspect", "bench"):
        try:
            module = __import__(f"engine.commands.{name}", fromlist=[name])
        except ModuleNotFoundError as err:
            if err.name != f"engine.commands.{name}":
                raise
            continue
        main.add_command(getattr(module, name))


_register()
