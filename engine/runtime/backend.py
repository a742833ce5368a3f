"""The backend interface: one padded batch in, the graph's named output arrays out.

Everything above it (batching, prefetch, heads, the server's batcher, the bulk job) sees only this Protocol, so a new
backend (OpenVINO, say) is one module in backends/ plus one line in backends.open_backend, and tests run the whole
pipeline on a fake backend with no model at all.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .batching import Batch


class Backend(Protocol):
    """One loaded graph. device and providers say what really runs it (after any fallback), not what was asked."""

    device: str  # 'cpu' or 'cuda'
    providers: list[str]  # the backend's own names for what runs the graph, best first
    inputs: tuple[str, ...]  # the graph's input names (input_ids, attention_mask, token_type_ids, ...)
    outputs: dict[str, tuple]  # output name -> static shape (an int per fixed axis, None per symbolic one)

    def run(self, batch: Batch, outputs: Sequence[str]) -> dict[str, np.ndarray]:
        """The named outputs of one padded batch, as numpy arrays on the host, first axis = the batch's rows."""
        ...


def feed(batch: Batch, inputs: Sequence[str]) -> dict[str, np.ndarray]:
    """The arrays a graph with these inputs takes for a batch: ids, mask, and segment ids (zeros for single texts)."""
    arrays = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    if "token_type_ids" in inputs:
        arrays["token_type_ids"] = batch.token_type_ids if batch.token_type_ids is not None else np.zeros_like(batch.input_ids)
    return arrays
