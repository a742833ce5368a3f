"""EmbedderConfig validates each option once, on creation."""
from __future__ import annotations

import pytest

from engine.config import EmbedderConfig
from engine.errors import ConfigError


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
