"""The real texts quantized precisions are gated on: 336 paragraphs of Python's documentation (PSF license) of mixed
length, shipped in export/data/parity_texts.json.gz (built by benchmarks/build_parity_texts.py, never fetched)."""
from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path

PARITY_TEXTS_FILE = Path(__file__).parent / "data" / "parity_texts.json.gz"


@functools.lru_cache(maxsize=1)
def parity_texts() -> tuple[str, ...]:
    """The shipped texts, in their fixed order (3 to 2,000+ tokens; long ones are cut at the export's max_length)."""
    with gzip.open(PARITY_TEXTS_FILE, "rt", encoding="utf-8") as fh:
        texts = json.load(fh)
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise ValueError(f"{PARITY_TEXTS_FILE} is damaged: not a list of non-empty strings; reinstall embedding-engine")
    return tuple(texts)
