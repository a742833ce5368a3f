"""The one place where the engine's typed errors become exit codes: 2 usage, 1 failure (click's own convention)."""
from __future__ import annotations

import functools
import json

import click

from export import ParityError

from ..errors import USAGE_ERRORS, USER_ERRORS


def handle_errors(fn):
    """Run a command; a usage error exits 2, any other engine error or OS error exits 1, each with its message."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except USAGE_ERRORS as err:
            raise click.UsageError(str(err)) from err
        except ParityError as err:
            click.echo(json.dumps(err.report, indent=2), err=True)
            raise click.ClickException(str(err)) from err
        except USER_ERRORS as err:
            raise click.ClickException(str(err)) from err
        except OSError as err:
            raise click.ClickException(f"{type(err).__name__}: {err}") from err
    return wrapper
