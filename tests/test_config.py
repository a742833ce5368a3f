"""EmbedderConfig validates each option once, on creation."""
from __future__ import annotations

import pytest

from engine.config import DEVICES, EmbedderConfig, config_from_options
from engine.errors import ConfigError
from export import POOLING_MODES, PRECISIONS


@pytest.mark.parametrize("pooling", ["mean", "lasttoken", "cls+mean", "cls+mean-sqrt-len"])
def test_pooling_modes_and_combinations_are_accepted(pooling):
    assert EmbedderConfig(pooling=pooling).pooling == pooling


@pytest.mark.parametrize("field, value, message", [
    ("pooling", "median", "pooling 'median' is not one of"),
    ("device", "tpu", "device 'tpu' is not one of auto, cpu, cuda"),
    ("long_text", "split", "long_text 'split' is not one of truncate, chunk"),
    ("max_batch_tokens", 0, "max_batch_tokens must be at least 1"),
    ("threads", 1.5, "threads must be an integer"),
])
def test_bad_values_name_the_option(field, value, message):
    with pytest.raises(ConfigError, match=message):
        EmbedderConfig(**{field: value})


def test_every_field_is_an_option_of_embed_and_serve():
    """The CLI options are derived from EmbedderConfig: one per field, with its default, choices and minimum."""
    import dataclasses

    import click

    from engine.cli import main

    fields = {f.name: f for f in dataclasses.fields(EmbedderConfig)}
    for name in ("embed", "serve"):
        command = main.get_command(click.Context(main), name)
        params = {p.name: p for p in command.params if isinstance(p, click.Option)}
        assert set(fields) <= set(params), (name, set(fields) - set(params))
        for field in fields.values():
            p = params[field.name]
            assert p.opts == ["--" + field.name.replace("_", "-")] and p.default == field.default, (name, p)
            assert p.help == field.metadata["help"]
        assert params["normalize"].secondary_opts == ["--no-normalize"]
        assert isinstance(params["device"].type, click.Choice) and tuple(params["device"].type.choices) == DEVICES
        assert tuple(params["pooling"].type.choices) == POOLING_MODES
        assert tuple(params["precision"].type.choices) == PRECISIONS
        assert isinstance(params["max_length"].type, click.IntRange) and params["max_length"].type.min == 2
        assert params["chunk_stride"].type.min == 0 and params["threads"].type.min == 1


def test_unknown_options_are_one_config_error_naming_them():
    with pytest.raises(ConfigError, match=r"embed_dataset: unknown option 'devcie'; the options are EmbedderConfig's "
                                          r"fields: model, device, backend, precision, "):
        config_from_options({"devcie": "cpu"}, "embed_dataset")
    assert config_from_options({"device": "cpu"}, "x") == EmbedderConfig(device="cpu")
    langchain = pytest.importorskip("engine.integrations.langchain")
    with pytest.raises(ConfigError, match=r"EngineEmbeddings: unknown options 'devcie', 'thread'; the options are "
                                          r"EmbedderConfig's fields: model, device"):
        langchain.EngineEmbeddings(devcie="cpu", thread=2)  # refused before any model is loaded
    with pytest.raises(ValueError, match="unknown option 'devcie'"):  # ConfigError is a ValueError
        langchain.EngineEmbeddings(devcie="cpu")
