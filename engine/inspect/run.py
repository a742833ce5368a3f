"""run_inspect: the `engine inspect` job. Texts -> heatmaps, the top-attended table, arrays; a corpus -> layer drift."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..config import EmbedderConfig
from ..errors import ConfigError, OutputError
from ..runtime import Embedder
from .outputs import corpus_drift, format_drift, read_corpus, write_drift_outputs, write_text_outputs
from .selection import select_indices, special_tokens


@dataclass(frozen=True)
class InspectJob:
    """What to inspect and where to write it; CLI options map 1:1 to these fields."""

    texts: tuple[str, ...] = ()
    out: str = "inspect-out"
    layers: str = "all"
    heads: str = "all"
    ignore_special: bool = False
    corpus: str | None = None
    save_arrays: bool = False
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)

    def __post_init__(self) -> None:
        if not self.texts and not self.corpus:
            raise ConfigError("give at least one TEXT to inspect, or --corpus FILE")


@dataclass
class InspectResult:
    """What a run printed and wrote: warnings, the top-attended table, the drift summary, the files."""

    warnings: list[str] = field(default_factory=list)
    table: str = ""
    drift: str = ""
    files: list[Path] = field(default_factory=list)


def run_inspect(job: InspectJob) -> InspectResult:
    """Inspect job.texts (and job.corpus) with the model and write every output under job.out."""
    out = claim_out(Path(job.out))  # before the model loads: a bad --out fails in a second
    corpus_texts = read_corpus(Path(job.corpus)) if job.corpus else None
    emb = Embedder.from_config(job.embedder)
    layer_list = select_indices(job.layers, int(emb.manifest["layers"]), "layer")
    head_list = select_indices(job.heads, int(emb.manifest["heads"]), "head")
    name = model_label(emb.manifest, emb.model_dir)
    clear_previous(out)
    result = InspectResult()
    if job.texts:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            ins = emb.inspect(list(job.texts))
        result.warnings += [str(w.message) for w in caught]
        ignore = special_tokens(emb.rust_tokenizer) if job.ignore_special else set()
        written = write_text_outputs(ins, list(job.texts), out, layer_list, head_list, ignore, job.save_arrays, title=name)
        result.table = written.table
        result.files += written.files
    if corpus_texts:
        drift, truncated = corpus_drift(emb.inspect, corpus_texts)
        if truncated:
            result.warnings.append(f"{truncated} of {len(corpus_texts)} corpus texts were truncated to {emb.max_length} tokens")
        written = write_drift_outputs(drift, out, name)
        result.drift = format_drift(written.drift_summary)
        result.files += written.files
    return result


MARKER = ".engine-inspect"  # marks a folder written by engine inspect; its outputs may be replaced on the next run
OUTPUT_PATTERNS = ("attention_text*_layer*.png", "attention.html", "top_attended.csv", "arrays/text*.npz", "drift.csv",
                   "drift_cls.csv", "drift_summary.json", "drift_to_layer0.png", "drift_to_previous.png")


def claim_out(out: Path) -> Path:
    """Create --out (or accept an earlier run's folder) and mark it as ours; OutputError when it is a file, a
    non-empty folder engine inspect did not write (nothing in it is touched), or cannot be written."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file; pass a folder (it is created if missing)")
    if out.is_dir() and not (out / MARKER).is_file():
        entries = sorted(p.name for p in out.iterdir())
        if entries:
            shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
            raise OutputError(f"--out {out} is not empty and was not written by engine inspect (it holds {shown}); "
                              "choose a new or empty folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MARKER).write_text("engine inspect output folder: its files are replaced by the next run\n")
    except OSError as err:
        raise OutputError(f"--out {out} cannot be written ({err.strerror or type(err).__name__}"
                          f"{': ' + err.filename if err.filename else ''}); pass a writable folder") from None
    return out


def clear_previous(out: Path) -> None:
    """Remove an earlier run's outputs, so no stale heatmap stays beside a new page."""
    for pattern in OUTPUT_PATTERNS:
        for old in out.glob(pattern):
            old.unlink()


def model_label(manifest: dict, model_dir: Path) -> str:
    """A short name for titles: the source folder's name (its parent's when it is a generic 'model' folder)."""
    source = str(manifest.get("source", {}).get("model") or model_dir)
    if "/" in source and not Path(source).exists() and source.count("/") == 1:
        return source  # hub id
    path = Path(source)
    return path.parent.name if path.name in ("model", "models", "snapshot") and path.parent.name else path.name
