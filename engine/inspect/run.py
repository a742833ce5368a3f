"""run_inspect: the `engine inspect` job. Texts -> heatmaps, the top-attended table, arrays; a corpus -> layer drift."""
from __future__ import annotations

import tempfile
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
    out = writable_folder(Path(job.out))  # before the model loads: a bad --out fails in a second
    corpus_texts = read_corpus(Path(job.corpus)) if job.corpus else None
    emb = Embedder.from_config(job.embedder)
    layer_list = select_indices(job.layers, int(emb.manifest["layers"]), "layer")
    head_list = select_indices(job.heads, int(emb.manifest["heads"]), "head")
    name = model_label(emb.manifest, emb.model_dir)
    result = InspectResult()
    if job.texts:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            ins = emb.inspect(list(job.texts))
        result.warnings += [str(w.message) for w in caught]
        ignore = special_tokens(emb.tokenizer) if job.ignore_special else set()
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


def writable_folder(out: Path) -> Path:
    """Create --out and check that files can be written in it; OutputError naming the folder otherwise."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".engine-write-test-"):
            pass
    except OSError as err:
        raise OutputError(f"--out {out} cannot be written ({err.strerror or type(err).__name__}"
                          f"{': ' + err.filename if err.filename else ''}); pass a writable folder") from None
    return out


def model_label(manifest: dict, model_dir: Path) -> str:
    """A short name for titles: the source folder's name (its parent's when it is a generic 'model' folder)."""
    source = str(manifest.get("source", {}).get("model") or model_dir)
    if "/" in source and not Path(source).exists() and source.count("/") == 1:
        return source  # hub id
    path = Path(source)
    return path.parent.name if path.name in ("model", "models", "snapshot") and path.parent.name else path.name
