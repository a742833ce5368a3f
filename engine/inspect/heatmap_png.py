"""Attention heatmaps as a PNG (matplotlib, Agg): for one text and layer, a grid of every selected head, tokens on both axes."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..extras import require
from .attention_table import _check_range

MAX_LABELS = 48  # beyond this many tokens, label every k-th token so the axes stay legible


def heatmap_png(tokens: Sequence[str], attentions: NDArray, layer: int, path: Path, heads: Sequence[int] | None = None,
                title: str = "") -> Path:
    """Write a grid of heatmaps (rows = query tokens, columns = key tokens, colour = weight on a fixed 0..1 scale).

    attentions: one text's (L, heads, t, t). Every panel shares the 0..1 colour scale so heads compare directly.
    """
    Figure = require("matplotlib.figure", "inspect", "drawing attention heatmap PNGs").Figure  # no pyplot: no global backend switch

    attentions = np.asarray(attentions)
    n_layers, n_heads, t, _ = attentions.shape
    _check_range([layer], n_layers, "layer")
    heads = list(range(n_heads)) if heads is None else list(heads)
    _check_range(heads, n_heads, "head")
    cols = min(len(heads), 4)
    rows = math.ceil(len(heads) / cols)
    side = min(4.2, max(2.6, 0.17 * t + 1.2))
    fig = Figure(figsize=(side * cols + 1.2, side * rows + 0.8), dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False)
    step = max(1, math.ceil(t / MAX_LABELS))
    ticks = np.arange(0, t, step)
    labels = [tokens[i] for i in ticks]
    font = 7 if t <= 24 else 6 if t <= 36 else 5
    image = None
    for ax, head in zip(axes.flat, heads):
        image = ax.imshow(attentions[layer, head], cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(f"head {head}", fontsize=9)
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels, rotation=90, fontsize=font)
        ax.set_yticks(ticks)
        ax.set_yticklabels(labels, fontsize=font)
        ax.tick_params(length=0)
    for ax in list(axes.flat)[len(heads):]:
        ax.axis("off")
    fig.suptitle(title or f"layer {layer}: attention weights (rows attend to columns)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.94, 1))
    cax = fig.add_axes((0.955, 0.3, 0.012, 0.4))
    fig.colorbar(image, cax=cax).ax.tick_params(labelsize=7)
    fig.savefig(path)
    return Path(path)
