"""Layer drift over a corpus: how far each layer's mean-pooled text vector moves from layer 0 and from the layer before.

Definitions, for a text with t tokens (special tokens included) and hidden states h[0..L] of shape (t, H), where h[0] is
the embedding output and h[l] the output of transformer layer l:

- m[l] = mean of h[l] over the text's t valid tokens (mask-aware mean pooling; padding never enters).
- to_layer0[l] = cos(m[l], m[0]) for l = 1..L: how far layer l has drifted from the embedding output.
- to_previous[l] = cos(m[l], m[l-1]) for l = 1..L: how much layer l changes its input.
- cls_static_dynamic = cos(h[0][0], h[L][0]): the [CLS] vector before any attention ("static": the embedding-layer
  output, which depends only on the token, its position and type) against the last layer's [CLS] ("dynamic": after
  every layer has mixed in the context). It is summarized over the corpus as mean, std, min, median and max.

Cosines are computed in float64.
"""
from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..extras import require


@dataclass(frozen=True)
class Drift:
    """Per-text drift numbers: to_layer0 and to_previous (N, L), column l-1 is layer l; cls_static_dynamic (N,)."""

    to_layer0: NDArray[np.float64]
    to_previous: NDArray[np.float64]
    cls_static_dynamic: NDArray[np.float64]
    tokens: NDArray[np.int64]  # (N,) tokens per text

    @property
    def num_layers(self) -> int:
        return int(self.to_layer0.shape[1])

    def summary(self) -> dict:
        """Corpus-level means per layer and the static-versus-dynamic [CLS] cosine summary."""
        c = self.cls_static_dynamic
        return {
            "texts": int(len(c)),
            "to_layer0_mean": [round(float(x), 6) for x in self.to_layer0.mean(0)],
            "to_previous_mean": [round(float(x), 6) for x in self.to_previous.mean(0)],
            "cls_static_dynamic": {name: round(float(f(c)), 6) for name, f in
                                   (("mean", np.mean), ("std", np.std), ("min", np.min), ("median", np.median), ("max", np.max))},
        }


class DriftAccumulator:
    """Collect drift numbers text by text, so a corpus never has to hold every hidden state at once."""

    def __init__(self) -> None:
        self._to0: list[NDArray] = []
        self._prev: list[NDArray] = []
        self._cls: list[float] = []
        self._tokens: list[int] = []

    def add(self, hidden_states: NDArray) -> None:
        """One text's hidden states (L+1, t, H), padding already removed."""
        h = np.asarray(hidden_states, dtype=np.float64)
        m = h.mean(axis=1)  # (L+1, H)
        self._to0.append(_cos(m[1:], m[:1]))
        self._prev.append(_cos(m[1:], m[:-1]))
        self._cls.append(float(_cos(h[0, :1], h[-1, :1])[0]))
        self._tokens.append(h.shape[1])

    def result(self) -> Drift:
        if not self._cls:
            raise ValueError("no text was added")
        return Drift(to_layer0=np.stack(self._to0), to_previous=np.stack(self._prev),
                     cls_static_dynamic=np.asarray(self._cls), tokens=np.asarray(self._tokens, dtype=np.int64))


def layer_drift(hidden_states: Iterable[NDArray]) -> Drift:
    """Drift of every text from its per-text hidden states (each (L+1, t, H))."""
    acc = DriftAccumulator()
    for h in hidden_states:
        acc.add(h)
    return acc.result()


def write_csv(drift: Drift, out_dir: Path) -> list[Path]:
    """drift.csv (text, layer, tokens, cos_to_layer0, cos_to_previous) and drift_cls.csv (text, tokens, cls cosine)."""
    out_dir = Path(out_dir)
    per_layer, cls = out_dir / "drift.csv", out_dir / "drift_cls.csv"
    with per_layer.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "layer", "tokens", "cos_to_layer0", "cos_to_previous"])
        for i in range(len(drift.tokens)):
            for l in range(drift.num_layers):
                w.writerow([i, l + 1, int(drift.tokens[i]), f"{drift.to_layer0[i, l]:.6f}", f"{drift.to_previous[i, l]:.6f}"])
    with cls.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "tokens", "cls_static_dynamic_cos"])
        for i, c in enumerate(drift.cls_static_dynamic):
            w.writerow([i, int(drift.tokens[i]), f"{c:.6f}"])
    return [per_layer, cls]


def violin_pngs(drift: Drift, out_dir: Path, model_name: str = "") -> list[Path]:
    """The two violin plots: cosine to layer 0, and cosine to the previous layer, one violin per layer."""
    Figure = require("matplotlib.figure", "inspect", "drawing the drift violin plots").Figure  # no pyplot: no global backend switch

    out_dir = Path(out_dir)
    layers = np.arange(1, drift.num_layers + 1)
    paths = []
    for name, data, title in (
        ("drift_to_layer0.png", drift.to_layer0, "cosine(mean-pooled layer l, layer 0)"),
        ("drift_to_previous.png", drift.to_previous, "cosine(mean-pooled layer l, layer l-1)"),
    ):
        fig = Figure(figsize=(1.2 * drift.num_layers + 3, 4.2), dpi=110)
        ax = fig.subplots()
        parts = ax.violinplot([data[:, l] for l in range(drift.num_layers)], positions=layers, showmeans=True,
                              showextrema=True, widths=0.8)
        for body in parts["bodies"]:
            body.set_facecolor("#4C72B0")
            body.set_alpha(0.55)
        ax.set_xticks(layers)
        ax.set_xlabel("layer l")
        ax.set_ylabel("cosine similarity")
        suffix = f" - {model_name}" if model_name else ""
        ax.set_title(f"{title}\n{len(drift.tokens)} texts{suffix}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        path = out_dir / name
        fig.savefig(path)
        paths.append(path)
    return paths


def _cos(a: NDArray, b: NDArray) -> NDArray:
    """Row-wise cosine of a (n, H) with b (n, H) or (1, H)."""
    num = (a * b).sum(-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return num / np.maximum(den, 1e-12)
