"""The one place where errors become exit codes: 2 usage (a bad option, anywhere), 1 failure (click's convention)."""
from __future__ import annotations

import functools
import json

import click

from export import OptionError

from ..errors import USAGE_ERRORS, USER_ERRORS


def handle_errors(fn):
    """Run a command; a usage error exits 2, any other engine or exporter error, or an OS error, exits 1, each with
    its message (and a missed parity bar's report on stderr)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (*USAGE_ERRORS, OptionError) as err:  # export's OptionError: `engine export`'s own bad options
            raise click.UsageError(_text(err)) from err
        except USER_ERRORS as err:
            report = getattr(err, "report", None)  # ParityError, or a first-use export's (ModelFolderError)
            if report:
                click.echo(json.dumps(report, indent=2), err=True)
            raise click.ClickException(_text(err)) from err
        except OSError as err:
            raise click.ClickException(f"{type(err).__name__}: {err}") from err
    return wrapper


def _text(err: BaseException) -> str:
    """The error's message; never an empty one (its type stands in)."""
    return str(err).strip() or f"{type(err).__name__} (no message)"
