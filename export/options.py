"""The one frozen configuration of an export; CLI flags map 1:1 to its fields."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

POOLING_MODES = (
    "cls", "mean", "max", "pooler", "weighted-mean",
    "last-k-mean", "last-k-max", "last-k-concat",
)
PRECISIONS = ("fp32", "fp16", "int8")


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
    token_embeddings: bool | None = None  # None: on, except int8 (per-token int8 vectors miss the 0.99 cosine bar)
    opset: int = 17
    atol: float | None = None
    min_cos: float | None = None
    overwrite: bool = False
    trust_remote_code: bool = False
    revision: str | None = None

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
