"""Text between the engine and a terminal: arguments as the terminal passed them, output any stdout can take.

Python decodes command-line arguments with the locale's encoding and keeps bytes it cannot decode as lone surrogates
(errors='surrogateescape'); a tokenizer cannot take those. Output goes to streams whose encoding may not hold the
text (PYTHONIOENCODING=latin-1, a C locale): what they cannot encode is written as backslash escapes.
"""
from __future__ import annotations

import click


def argument_text(text: str) -> tuple[str, bool]:
    """(text as Unicode, whether bytes that are not UTF-8 were replaced by U+FFFD). The bytes behind surrogates are
    read as UTF-8: a C or ASCII locale's arguments are then the text the user typed."""
    try:
        text.encode("utf-8")
        return text, False
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")  # the argument's original bytes
    except UnicodeEncodeError:  # a surrogate that no undecodable byte makes (not from a command line)
        return text.encode("utf-8", "replace").decode("utf-8"), True
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), True


def echo(text: str, err: bool = False) -> None:
    """click.echo, with what the stream's encoding cannot hold written as backslash escapes (never an error)."""
    stream = click.get_text_stream("stderr" if err else "stdout")
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text = text.encode(encoding, "backslashreplace").decode(encoding, "replace")
    except LookupError:  # a stream naming an encoding Python does not know: leave the text as is
        pass
    click.echo(text, err=err)
