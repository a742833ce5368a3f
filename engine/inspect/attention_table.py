"""The top-attended-token table: for each layer, each token -> the token it attends to most (max over heads)."""
from __future__ import annotations

import csv
from collections.abc import Collection, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError


@dataclass(frozen=True)
class TopAttended:
    """One cell of the table: in `layer`, token `position` attends most to `target_position`, with `weight` in `head`."""

    text: int
    layer: int
    position: int
    token: str
    target_position: int
    target: str
    weight: float
    head: int


def top_attended(tokens: Sequence[str], attentions: NDArray, layers: Sequence[int] | None = None,
                 heads: Sequence[int] | None = None, ignore: Collection[str] = (), text: int = 0) -> list[TopAttended]:
    """Each query token's most-attended key token per layer, one text.

    attentions: (L, heads, t, t), rows = query tokens, columns = key tokens. For layer l the score of q -> k is
    max over the selected heads of attentions[l, h, q, k]; the target is argmax_k of that score (the first index on a
    tie), `weight` is the score and `head` the head that reached it. Tokens whose word piece is in `ignore` (for
    example {'[CLS]', '[SEP]'}) are dropped both as queries and as targets; the remaining weights are not renormalized.
    """
    attentions = np.asarray(attentions)
    if attentions.ndim != 4 or attentions.shape[2:] != (len(tokens), len(tokens)):
        raise InputError(f"attentions of shape {attentions.shape} do not match {len(tokens)} tokens; expected (L, heads, t, t)")
    n_layers, n_heads = attentions.shape[:2]
    layers = range(n_layers) if layers is None else layers
    heads = np.arange(n_heads) if heads is None else np.asarray(list(heads), dtype=np.int64)
    _check_range(layers, n_layers, "layer")
    _check_range(heads, n_heads, "head")
    keep = np.array([tok not in ignore for tok in tokens], dtype=bool)
    if not keep.any():
        return []
    rows = []
    for layer in layers:
        sub = attentions[layer][heads]  # (h, t, t)
        score = sub.max(0)  # (t, t) max over heads
        best_head = heads[sub.argmax(0)]  # (t, t)
        masked = np.where(keep[None, :], score, -np.inf)
        target = masked.argmax(1)  # (t,)
        for q in np.flatnonzero(keep):
            k = int(target[q])
            rows.append(TopAttended(text=text, layer=int(layer), position=int(q), token=tokens[q], target_position=k,
                                    target=tokens[k], weight=float(score[q, k]), head=int(best_head[q, k])))
    return rows


def write_csv(rows: Sequence[TopAttended], path: Path) -> None:
    """One line per (text, layer, token): the columns of TopAttended."""
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([f.name for f in fields(TopAttended)])
        for row in rows:
            writer.writerow([f"{v:.6f}" if isinstance(v, float) else v for v in astuple(row)])


def format_table(rows: Sequence[TopAttended], markdown: bool = False) -> str:
    """A grid per text: one line per token, one column per layer, cells 'target weight'."""
    out = []
    for text in sorted({r.text for r in rows}):
        mine = [r for r in rows if r.text == text]
        layers = sorted({r.layer for r in mine})
        positions = sorted({r.position for r in mine})
        cell = {(r.position, r.layer): f"{r.target} {r.weight:.2f}" for r in mine}
        token = {r.position: r.token for r in mine}
        header = ["token"] + [f"layer {layer}" for layer in layers]
        body = [[token[p]] + [cell[(p, layer)] for layer in layers] for p in positions]
        if markdown:
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "---|" * len(header))
            out.extend("| " + " | ".join(_md(c) for c in line) + " |" for line in body)
        else:
            widths = [max(len(line[c]) for line in [header] + body) for c in range(len(header))]
            out.append(f"text {text}:")
            out.extend("  " + "  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in [header] + body)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _md(cell: str) -> str:
    """Escape what would break a markdown table cell."""
    return cell.replace("|", "\\|")


def _check_range(indices, count: int, what: str) -> None:
    bad = [int(i) for i in indices if not 0 <= int(i) < count]
    if bad:
        raise InputError(f"{what} {bad[0]} is out of range; the model has {count} {what}s, valid range 0..{count - 1}")
