"""The sizes of every measurement for CPU / CUDA, full / --quick."""
from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Plan:
    """Sizes of every measurement; the full plan keeps `make bench` under 15 minutes on 2 CPU cores."""

    repeats: int
    mixed: int  # texts in the mixed corpus (issue 3: >= 3,000)
    stride: dict  # system name -> measure every k-th text of a corpus (slow references); missing: 1
    lengths: dict  # short / medium / long -> texts
    budgets: tuple[int, ...]
    budget_corpus: tuple[str, int]
    bert: dict  # corpus -> texts
    parity_texts: int  # texts for the per-layer comparison
    retrieval: int  # texts in the top-10 neighbour check (>= 5,000)
    scaling: tuple[int, ...]


def make_plan(device: str, quick: bool, repeats: int | None, scaling_100k: bool) -> Plan:
    """The sizes for this device and mode, with --repeats and --scaling-100k applied."""
    if device == "cuda":
        plan = Plan(repeats=3, mixed=3000, stride={}, lengths={"short": 3000, "medium": 2000, "long": 250},
                    budgets=(4096, 16384, 65536, 131072), budget_corpus=("mixed", 3000),
                    bert={"medium": 2000, "long": 250}, parity_texts=64, retrieval=5000,
                    scaling=(1000, 3000, 10000, 30000))
        if quick:
            plan = replace(plan, mixed=300, lengths={"short": 200, "medium": 100, "long": 40}, budgets=(4096, 65536),
                           budget_corpus=("mixed", 300), bert={"medium": 100}, parity_texts=16, retrieval=500,
                           scaling=(100, 300))
    else:
        # Measured here: transformers eager ~300-700 real tokens/s, SDPA ~450-1,400, sentence-transformers ~750-3,000,
        # engine ~4,500 (2 threads). The slow references run on an evenly spaced subset of the same corpus.
        plan = Plan(repeats=3, mixed=3000,
                    stride={"hf eager input": 20, "hf eager sorted": 20, "hf sdpa input": 12, "hf sdpa sorted": 10,
                            "sentence-transformers": 6},
                    lengths={"short": 400, "medium": 200, "long": 48}, budgets=(1024, 4096, 16384, 65536),
                    budget_corpus=("medium", 200), bert={"medium": 40}, parity_texts=32, retrieval=5000,
                    scaling=(1000, 3000, 10000))
        if quick:
            plan = replace(plan, mixed=60, stride={"hf eager input": 3, "hf eager sorted": 3, "hf sdpa input": 2},
                           lengths={"short": 24, "medium": 12, "long": 4}, budgets=(1024, 16384),
                           budget_corpus=("medium", 12), bert={}, parity_texts=4, retrieval=100, scaling=(30, 90))
    if repeats:
        plan = replace(plan, repeats=repeats)
    if scaling_100k:
        plan = replace(plan, scaling=tuple(sorted(set(plan.scaling) | {30000, 100000})))
    return plan
