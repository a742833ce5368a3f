"""Attention heatmaps as a PNG: for one text and layer, every selected head tiled into one image, tokens on both axes.

The image is composed straight from the arrays (numpy colour lookup, Pillow for the word-piece labels) instead of
drawing a matplotlib figure: about 50 ms per layer instead of several seconds.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..extras import require
from .attention_table import _check_range

MAX_LABELS = 48  # beyond this many tokens, label every k-th token so the axes stay legible
# ColorBrewer "Blues" (9 classes), the colour scale of the HTML page: weight 0 -> white-ish, 1 -> dark blue.
BLUES = np.array([[247, 251, 255], [222, 235, 247], [198, 219, 239], [158, 202, 225], [107, 174, 214],
                  [66, 146, 198], [33, 113, 181], [8, 81, 156], [8, 48, 107]], dtype=np.float32)
GAP, PAD, FONT = 12, 10, 11  # pixels between panels, around the image; label font size


def colorize(weights: NDArray) -> NDArray[np.uint8]:
    """(…,) weights in 0..1 -> (…, 3) uint8 RGB on the Blues scale (linear between the 9 stops)."""
    x = np.clip(np.nan_to_num(np.asarray(weights, dtype=np.float32)), 0.0, 1.0) * (len(BLUES) - 1)
    lo = np.floor(x).astype(np.int64).clip(0, len(BLUES) - 2)
    frac = (x - lo)[..., None]
    return np.round(BLUES[lo] * (1 - frac) + BLUES[lo + 1] * frac).astype(np.uint8)


def heatmap_png(tokens: Sequence[str], attentions: NDArray, layer: int, path: Path, heads: Sequence[int] | None = None,
                title: str = "") -> Path:
    """Write a grid of heatmaps (rows = query tokens, columns = key tokens, colour = weight on a fixed 0..1 scale).

    attentions: one text's (L, heads, t, t). Every panel shares the 0..1 colour scale so heads compare directly; a
    colour bar on the right shows it.
    """
    pil = require("PIL.Image", "inspect", "drawing attention heatmap PNGs")
    draw_mod = require("PIL.ImageDraw", "inspect", "drawing attention heatmap PNGs")
    font = require("PIL.ImageFont", "inspect", "drawing attention heatmap PNGs").load_default(size=FONT)

    attentions = np.asarray(attentions)
    n_layers, n_heads, t, _ = attentions.shape
    _check_range([layer], n_layers, "layer")
    heads = list(range(n_heads)) if heads is None else list(heads)
    _check_range(heads, n_heads, "head")
    cols = min(len(heads), 4)
    rows = math.ceil(len(heads) / cols)
    cell = max(2, min(24, 320 // t))  # pixels per token
    panel = cell * t
    step = max(1, math.ceil(t / MAX_LABELS))
    labelled = list(range(0, t, step))
    label_w = int(max(font.getlength(tokens[i]) for i in labelled)) + 6
    title_h, head_h, bar_w = 2 * FONT + 12, FONT + 6, 60
    width = PAD + label_w + cols * panel + (cols - 1) * GAP + bar_w + PAD
    height = PAD + title_h + rows * (head_h + panel) + (rows - 1) * GAP + label_w + PAD
    img = pil.new("RGB", (width, height), "white")
    draw = draw_mod.Draw(img)
    draw.text((width // 2, PAD), title or f"layer {layer}: attention weights (rows attend to columns)", fill="black",
              font=font, anchor="ma")
    x0, y0 = PAD + label_w, PAD + title_h
    for k, head in enumerate(heads):
        r, c = divmod(k, cols)
        x, y = x0 + c * (panel + GAP), y0 + r * (head_h + panel + GAP) + head_h
        rgb = colorize(attentions[layer, head]).repeat(cell, axis=0).repeat(cell, axis=1)  # (panel, panel, 3)
        img.paste(pil.fromarray(rgb), (x, y))
        draw.text((x + panel // 2, y - 2), f"head {head}", fill="black", font=font, anchor="md")
        if c == 0:  # query tokens, right-aligned left of the first panel of each row
            for i in labelled:
                draw.text((x - 4, y + i * cell + cell // 2), tokens[i], fill="black", font=font, anchor="rm")
        if r == rows - 1 or k + cols >= len(heads):  # key tokens, rotated, under the lowest panel of each column
            _vertical_labels(pil, draw_mod, img, font, [tokens[i] for i in labelled], labelled, x, y + panel + 4, cell, label_w)
    _colour_bar(draw, font, width - PAD - bar_w + 10, y0 + head_h, min(rows * panel, 240))
    img.save(path, optimize=False)
    return Path(path)


def _vertical_labels(pil, draw_mod, img, font, labels: list[str], positions: list[int], x: int, y: int, cell: int,
                     length: int) -> None:
    """Key-token labels under a panel, reading top to bottom (drawn on a strip, then turned clockwise)."""
    n = positions[-1] + 1
    strip = pil.new("RGB", (length, n * cell), "white")
    d = draw_mod.Draw(strip)
    for label, i in zip(labels, positions):  # the strip's bottom becomes the left edge once turned
        d.text((2, (n - 1 - i) * cell + cell // 2), label, fill="black", font=font, anchor="lm")
    img.paste(strip.transpose(pil.Transpose.ROTATE_270), (x, y))


def _colour_bar(draw, font, x: int, y: int, h: int) -> None:
    """A vertical 0..1 scale: 1 at the top."""
    ramp = colorize(np.linspace(1.0, 0.0, h))
    for k, colour in enumerate(ramp):
        draw.line([(x, y + k), (x + 12, y + k)], fill=tuple(int(v) for v in colour))
    draw.rectangle([x, y, x + 12, y + h - 1], outline="black")
    for value in (0.0, 0.5, 1.0):
        draw.text((x + 16, y + round((1 - value) * (h - 1))), f"{value:.1f}", fill="black", font=font, anchor="lm")
