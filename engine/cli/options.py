"""The runtime options shared by `engine embed` and `engine serve`, derived from EmbedderConfig's fields.

Each field becomes one option, --field-name, with the help, choices and minimum of its metadata (engine.config.option):
bool | None -> --x/--no-x (default None); choices -> click.Choice; an int with a minimum -> click.IntRange; anything
else a plain option of the field's type. Adding a field to EmbedderConfig adds its option here with no other edit.
"""
from __future__ import annotations

import dataclasses
import functools
import types
import typing

import click

from ..config import FIELD_NAMES, FIELD_TYPES, EmbedderConfig


def _base_type(annotation) -> type:
    """int for `int | None`, str for `str` (the type besides None)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (base,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return base
    return annotation


def _click_option(f: dataclasses.Field):
    """The click option of one EmbedderConfig field."""
    meta, base = f.metadata, _base_type(FIELD_TYPES[f.name])
    flag = "--" + f.name.replace("_", "-")
    kwargs = {"default": f.default, "help": meta.get("help")}
    if f.default is not None:
        kwargs["show_default"] = True
    if base is bool:
        return click.option(f"{flag}/--no-{flag[2:]}", f.name, **kwargs)
    if meta.get("choices") is not None:
        kwargs["type"] = click.Choice(meta["choices"])
    elif base is int and meta.get("min") is not None:
        kwargs["type"] = click.IntRange(min=meta["min"])
    else:
        kwargs["type"] = base
    return click.option(flag, f.name, **kwargs)


def embedder_options(fn):
    """Add the EmbedderConfig options to a command; the command receives `embedder` (an EmbedderConfig) instead."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        embedder = EmbedderConfig(**{name: kwargs.pop(name) for name in FIELD_NAMES})
        return fn(*args, embedder=embedder, **kwargs)

    for f in reversed(dataclasses.fields(EmbedderConfig)):
        wrapper = _click_option(f)(wrapper)
    return wrapper
