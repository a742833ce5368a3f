"""The one frozen configuration of an export; CLI flags map 1:1 to its fields."""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

from .errors import OptionError

POOLING_MODES = (
    "cls", "mean", "max", "pooler", "weighted-mean", "mean-sqrt-len", "lasttoken",
    "last-k-mean", "last-k-max", "last-k-concat",
)
# Modes that combine, joined by '+' ("cls+mean"): their vectors are concatenated, as sentence-transformers does.
COMBINABLE_MODES = ("cls", "max", "mean", "mean-sqrt-len", "weighted-mean", "lasttoken")
# --pooling splade: SPLADE sparse vectors from a *ForMaskedLM's logits (export/sparse_folder.py); not an embedding pooling
SPLADE_POOLING = "splade"
PRECISIONS = ("fp32", "fp16", "bf16", "int8", "int8-fast")  # int8 recipes: export/int8.py
# bf16: the fp32 graph, run by OpenVINO with its bf16 hint on CPUs with bf16 units (export/cpu.py, export/ov_session.py)
OPENVINO_PRECISIONS = ("fp32", "bf16")  # the exports the openvino backend runs (its parity gate measured bf16 there)
# ONNX opsets the exporter is tested with (TorchScript exporter, onnxruntime's fusions, the int8 / fp16 lowering).
OPSETS = (13, 23)
MIN_MAX_LENGTH = 2  # one special token on each side


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how; None means 'take it from the model's metadata'."""

    model: str
    out_dir: str
    pooling: str | None = None
    normalize: bool | None = None
    max_length: int | None = None
    last_k: int = 4
    precision: str = "fp32"
    token_embeddings: bool | None = None  # None: on, except int8* (per-token int8 vectors miss the 0.99 cosine bar)
    opset: int = 17
    atol: float | None = None
    min_cos: float | None = None
    min_overlap: float | None = None
    overwrite: bool = False
    trust_remote_code: bool = False
    revision: str | None = None
    allow_large_config: bool = False  # config sizes past export/limits.py's bounds (a user who really means them)

    def __post_init__(self) -> None:
        """Validate every option once, before anything is loaded or written."""
        if not str(self.model).strip():
            raise OptionError("MODEL is an empty string; pass a model folder or a hub id")
        if not os.fspath(self.out_dir).strip():
            raise OptionError("OUT_DIR is an empty path (an unset variable?); pass the folder to write the export to")
        if self.pooling is not None and self.pooling != SPLADE_POOLING and not is_pooling(self.pooling):
            raise OptionError(f"pooling {self.pooling!r} is not supported; choose one of {', '.join(POOLING_MODES)}, "
                              f"{SPLADE_POOLING} (sparse vectors from a masked-language model), "
                              f"or several of {', '.join(COMBINABLE_MODES)} joined by '+'")
        if self.precision not in PRECISIONS:
            raise OptionError(f"precision {self.precision!r} is not supported; choose one of {', '.join(PRECISIONS)}")
        if self.max_length is not None and (not _is_int(self.max_length) or self.max_length < MIN_MAX_LENGTH):
            raise OptionError(f"--max-length {self.max_length} is out of range; it must be at least {MIN_MAX_LENGTH} "
                              "(omit it to use the model's own)")
        if not _is_int(self.last_k) or self.last_k < 1:
            raise OptionError(f"--last-k {self.last_k} is out of range; it must be at least 1")
        if not _is_int(self.opset) or not OPSETS[0] <= self.opset <= OPSETS[1]:
            raise OptionError(f"--opset {self.opset} is not supported; choose {OPSETS[0]}..{OPSETS[1]} (default 17)")
        for name in ("atol", "min_cos", "min_overlap"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
                raise OptionError(f"--{name.replace('_', '-')} {value!r} must be a finite number; "
                                  "a NaN or infinite threshold would turn parity validation off")
        if not isinstance(self.allow_large_config, bool):
            raise OptionError(f"allow_large_config {self.allow_large_config!r} must be True or False")
        if self.atol is not None and self.atol < 0:
            raise OptionError(f"--atol {self.atol} must be at least 0")
        if self.min_overlap is not None and not 0 <= self.min_overlap <= 1:
            raise OptionError(f"--min-overlap {self.min_overlap} is out of range; it is a share of neighbours, 0..1")

    def to_dict(self) -> dict:
        """Plain JSON-ready dict for the manifest."""
        return {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ResolvedOptions:
    """Export settings after defaults from sentence-transformers metadata or the architecture are applied."""

    pooling: str
    normalize: bool
    max_length: int
    last_k: int
    precision: str
    token_embeddings: bool
    defaults_from: str  # "sentence-transformers" or "architecture"


def is_pooling(value) -> bool:
    """True for one pooling mode, or distinct combinable modes joined by '+'."""
    if not isinstance(value, str):
        return False
    parts = value.split("+")
    if len(parts) == 1:
        return value in POOLING_MODES
    return all(p in COMBINABLE_MODES for p in parts) and len(set(parts)) == len(parts)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
