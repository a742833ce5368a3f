"""What a benchmark run was asked for: the sections and the Options that `python -m benchmarks` / `engine bench` parse."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SECTIONS = ("speed", "length", "budget", "bert", "parity", "scaling")
SECTION_HELP = {
    "speed": "all-MiniLM-L6-v2 on the mixed corpus (3,000 texts): every system, interleaved and repeated",
    "length": "all-MiniLM-L6-v2 on short / medium / long texts",
    "budget": "the engine at several batch token budgets",
    "bert": "BERT-base (random weights) speed",
    "parity": "hidden states and attentions per layer, pooled embeddings per precision, top-10 neighbour overlap",
    "scaling": "engine time and peak RSS against the number of texts",
}


@dataclass
class Options:
    """What `python -m benchmarks` / `engine bench` asked for."""

    device: str = "cpu"
    quick: bool = False
    out: Path | None = None  # default: benchmarks/results/<machine> (full), build/bench-quick/<machine> (quick)
    repeats: int | None = None  # default: 3
    only: tuple[str, ...] = SECTIONS
    threads: int = 2
    cache: Path | None = None  # exports + random BERT-base; default: the engine's cache folder + /bench
    exports: dict = field(default_factory=dict)  # "minilm-fp32" -> existing export folder (skips exporting)
    scaling_100k: bool = False
    report_only: bool = False
    log: object = None
