"""What `engine inspect` writes: heatmaps, the top-attended table, raw arrays, and corpus layer drift."""
from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..runtime.introspect import Inspection
from ..runtime.tokenize import check_unicode
from . import attention_table, drift as drift_mod
from .heatmap_html import heatmap_html
from .heatmap_png import heatmap_png

CORPUS_CHUNK = 64  # texts per inspect call while computing drift; only their mean-pooled vectors are kept


@dataclass
class Written:
    """Files written, and the text reports printed for the user."""

    files: list[Path] = field(default_factory=list)
    table: str = ""
    drift_summary: dict | None = None


def save_arrays(ins: Inspection, texts: Sequence[str], out_dir: Path) -> list[Path]:
    """One arrays/text{i}.npz per text, loadable without pickle.

    Keys: attentions float32 (L, heads, T, T); hidden_states float32 (L+1, T, H); tokens str (T,);
    input_ids int64 (T,); text str (). bertviz: head_view([torch.from_numpy(a[None]) for a in z["attentions"]],
    z["tokens"].tolist()); circuitsvis: attention_heads(z["attentions"][layer], z["tokens"].tolist()).
    """
    folder = Path(out_dir) / "arrays"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, text in enumerate(texts):
        path = folder / f"text{i}.npz"
        np.savez_compressed(path, attentions=ins.attentions[i], hidden_states=ins.hidden_states[i],
                            tokens=np.asarray(ins.tokens[i], dtype=str), input_ids=ins.input_ids[i],
                            text=np.asarray(text, dtype=str))
        paths.append(path)
    return paths


def write_text_outputs(ins: Inspection, texts: Sequence[str], out_dir: Path, layers: list[int], heads: list[int],
                       ignore: set[str], arrays: bool, title: str = "") -> Written:
    """Heatmap PNGs (one per text and layer), the HTML page, top_attended.csv, and optionally the .npz arrays."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = Written()
    rows = []
    for i, text in enumerate(texts):
        rows.extend(attention_table.top_attended(ins.tokens[i], ins.attentions[i], layers, heads, ignore, text=i))
        for layer in layers:
            name = f"attention_text{i}_layer{layer}.png"
            done.files.append(heatmap_png(ins.tokens[i], ins.attentions[i], layer, out_dir / name, heads,
                                          title=f"{title + ' - ' if title else ''}layer {layer}: {_short(text)}"))
    csv_path = out_dir / "top_attended.csv"
    attention_table.write_csv(rows, csv_path)
    done.files.append(csv_path)
    done.files.append(heatmap_html(ins.tokens, ins.attentions, out_dir / "attention.html", layers, heads, list(texts),
                                   title=f"Attention heatmaps{' - ' + title if title else ''}"))
    if arrays:
        done.files.extend(save_arrays(ins, texts, out_dir))
    done.table = attention_table.format_table(rows)
    return done


def read_corpus(path: Path) -> list[str]:
    """Texts of a corpus file: .jsonl (one object per line with a 'text' string) or plain text (one text per line).

    Blank lines are skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"corpus file {path} does not exist")
    texts = []
    with path.open(encoding="utf-8", errors="strict") as fh:
        try:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                if path.suffix == ".jsonl":
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as err:
                        raise InputError(f"{path}:{n}: not valid JSON ({err.msg})") from None
                    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                        raise InputError(f"{path}:{n}: needs a 'text' field holding a string")
                    try:
                        check_unicode(row["text"], "its 'text'")
                    except ValueError as err:  # a "\ud800" escape: JSON can spell what UTF-8 cannot
                        raise InputError(f"{path}:{n}: {err}") from None
                    if row["text"].strip():
                        texts.append(row["text"])
                else:
                    texts.append(line.rstrip("\r\n"))
        except UnicodeDecodeError as err:
            raise InputError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); convert it to UTF-8") from None
    if not texts:
        raise InputError(f"corpus file {path} holds no non-empty text")
    return texts


def corpus_drift(inspect: Callable[[list[str]], Inspection], texts: Sequence[str], chunk: int = CORPUS_CHUNK) -> tuple[drift_mod.Drift, int]:
    """Layer drift over texts, inspecting chunk texts at a time; returns the drift and the count of truncated texts."""
    acc = drift_mod.DriftAccumulator()
    truncated = 0
    for start in range(0, len(texts), chunk):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # truncation is counted and reported once below
            ins = inspect(list(texts[start:start + chunk]))
        truncated += int(ins.truncated.sum())
        for h in ins.hidden_states:
            acc.add(h)
    return acc.result(), truncated


def write_drift_outputs(drift: drift_mod.Drift, out_dir: Path, model_name: str = "") -> Written:
    """drift.csv, drift_cls.csv, drift_summary.json and the two violin PNGs."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = Written(drift_summary=drift.summary())
    done.files.extend(drift_mod.write_csv(drift, out_dir))
    summary = out_dir / "drift_summary.json"
    summary.write_text(json.dumps(done.drift_summary, indent=2) + "\n")
    done.files.append(summary)
    done.files.extend(drift_mod.violin_pngs(drift, out_dir, model_name))
    return done


def format_drift(summary: dict) -> str:
    """Human summary of drift_summary.json."""
    layers = range(1, len(summary["to_layer0_mean"]) + 1)
    c = summary["cls_static_dynamic"]
    return "\n".join([
        f"layer drift over {summary['texts']} texts (mean cosine of mean-pooled vectors):",
        "  layer        " + "  ".join(f"{l:>6}" for l in layers),
        "  to layer 0   " + "  ".join(f"{x:6.3f}" for x in summary["to_layer0_mean"]),
        "  to previous  " + "  ".join(f"{x:6.3f}" for x in summary["to_previous_mean"]),
        f"static vs dynamic [CLS] cosine (layer 0 vs layer {len(layers)}): mean {c['mean']:.3f}  std {c['std']:.3f}  "
        f"min {c['min']:.3f}  median {c['median']:.3f}  max {c['max']:.3f}",
    ]) + "\n"


def _short(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."
