"""The `engine` command: a click group. Each subcommand (one module each) parses options, builds a config and calls
one function; engine.cli.errors maps errors to exit codes."""
from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="embedding-engine")
def main() -> None:
    """ONNX-accelerated batch embedding engine."""


def _register() -> None:
    from .bench import bench
    from .embed import embed
    from .export import export
    from .inspect import inspect
    from .score import score
    from .serve import serve

    for command in (export, embed, score, inspect, serve, bench):
        main.add_command(command)


_register()
