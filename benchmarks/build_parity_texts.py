"""Build export/data/parity_texts.json.gz, the real texts the exporter gates quantized precisions on (committed;
rebuild with `python -m benchmarks.build_parity_texts`).

Sources: benchmarks/data/pydoc_topics.jsonl.gz (paragraphs of Python's pydoc topics) and stdlib_docstrings.jsonl.gz
(stdlib docstring paragraphs), both Python's own documentation under the PSF license. 336 unique texts drawn with a
fixed seed in token-length strata (bundled all-MiniLM-L6-v2 tokenizer, special tokens included): 96 short (3..16
tokens), 96 of 17..48, 80 of 49..128, 40 of 129..255 and 24 of 256 and more (cut at the export's max_length), so the
gate sees one-line API docs (many near-duplicates, "Return the ..."), sentences, paragraphs and truncated pages.
gzip'ed without a timestamp: rebuilding gives identical bytes.
"""
from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

from .corpus import token_lengths

DATA = Path(__file__).parent / "data"
OUT = Path(__file__).resolve().parent.parent / "export" / "data" / "parity_texts.json.gz"
STRATA = ((3, 16, 96), (17, 48, 96), (49, 128, 80), (129, 255, 40), (256, None, 24))  # (min tokens, max, count)
SEED = 24


def _rows(name: str) -> list[str]:
    with gzip.open(DATA / name, "rt", encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh]


def parity_texts() -> list[str]:
    """The texts, in a fixed shuffled order (strata interleaved)."""
    pool, seen = [], set()
    for text in _rows("pydoc_topics.jsonl.gz") + _rows("stdlib_docstrings.jsonl.gz"):
        text = " ".join(text.split())
        if text and text not in seen:
            seen.add(text)
            pool.append(text)
    lengths = token_lengths(pool)
    rng = random.Random(SEED)
    out = []
    for lo, hi, count in STRATA:
        fits = [t for t, n in zip(pool, lengths) if n >= lo and (hi is None or n <= hi)]
        if len(fits) < count:
            raise ValueError(f"only {len(fits)} texts of {lo}..{hi} tokens; need {count}")
        out += rng.sample(fits, count)
    rng.shuffle(out)
    return out


def main() -> None:
    texts = parity_texts()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(texts, ensure_ascii=False, indent=0).encode("utf-8")
    OUT.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    lengths = token_lengths(texts)
    print(f"{OUT}: {len(texts)} texts, {OUT.stat().st_size} bytes, tokens min {lengths.min()} median "
          f"{int(sorted(lengths)[len(lengths) // 2])} max {lengths.max()} total {lengths.sum()}")


if __name__ == "__main__":
    main()
