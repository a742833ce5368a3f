"""A retrieval task whose right answers are known without labelling: stdlib names -> their docstrings.

Queries are public stdlib function, class and method names ("pathlib.Path.write_text"); the one relevant document
of each is the first paragraph of its docstring ("Open the file in text mode, write to it, and close the file.").
Docstrings shared by several names are left out (their answer would be ambiguous). Every other docstring, plus the
pydoc topic paragraphs of benchmarks/data/pydoc_topics.jsonl.gz, stays in the corpus as a distractor.

The docstrings are parsed once (never imported) into benchmarks/data/stdlib_docstrings.jsonl.gz, committed so every
machine and Python version gets the same task; rebuild it with `python -m benchmarks.retrieval_task`.
"""
from __future__ import annotations

import ast
import gzip
import json
import random
import re
import sysconfig
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

DATA = Path(__file__).resolve().parent / "data"
DOCSTRINGS = DATA / "stdlib_docstrings.jsonl.gz"
TOPICS = DATA / "pydoc_topics.jsonl.gz"
SKIP_PARTS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "ensurepip", "turtledemo", "__pycache__"}
MIN_WORDS = 4
SEED = 0


@dataclass(frozen=True)
class RetrievalTask:
    """doc_ids / docs: the corpus; queries[i] is answered by the document whose id is answers[i]."""

    doc_ids: list[str]
    docs: list[str]
    queries: list[str]
    answers: list[str]


def load_task(n_queries: int | None = None, n_docs: int | None = None, seed: int = SEED) -> RetrievalTask:
    """The task: n_queries names (all ~4,200 when None) over n_docs documents (every one, ~7,800, when None).

    A smaller corpus holds every answer of the chosen queries, then distractors (other docstrings and pydoc
    paragraphs, shuffled) up to n_docs. Deterministic for a seed.
    """
    with gzip.open(DOCSTRINGS, "rt") as fh:
        named = [json.loads(line) for line in fh]
    with gzip.open(TOPICS, "rt") as fh:
        topics = [json.loads(line) for line in fh]
    rng = random.Random(seed)
    order = list(range(len(named)))
    rng.shuffle(order)
    chosen = order[:n_queries] if n_queries else order
    if n_docs is not None and n_docs < len(chosen):
        raise ValueError(f"n_docs {n_docs} must be at least n_queries {len(chosen)} (each answer is a document)")
    named_texts = {r["text"] for r in named}
    distractors = [(named[i]["id"], named[i]["text"]) for i in order[len(chosen):]]
    distractors += [("pydoc:" + t["id"], t["text"]) for t in topics if t["text"] not in named_texts]
    rng.shuffle(distractors)
    docs = [(named[i]["id"], named[i]["text"]) for i in chosen]
    docs += distractors[: (n_docs - len(docs)) if n_docs is not None else None]
    rng.shuffle(docs)
    return RetrievalTask(doc_ids=[d[0] for d in docs], docs=[d[1] for d in docs],
                         queries=[named[i]["id"] for i in chosen], answers=[named[i]["id"] for i in chosen])


def top_k(query_vectors: NDArray[np.float32], doc_vectors: NDArray[np.float32], doc_ids: list[str], k: int = 10) -> list[list[str]]:
    """Exact cosine top-k ids per query: query_vectors (Q, D), doc_vectors (N, D)."""
    q = query_vectors / np.linalg.norm(query_vectors, axis=1, keepdims=True)
    d = doc_vectors / np.linalg.norm(doc_vectors, axis=1, keepdims=True)
    scores = q @ d.T  # (Q, N)
    idx = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[doc_ids[j] for j in row] for row in idx]


def scores(ranked: list[list[str]], answers: list[str], k: int = 10) -> dict[str, float]:
    """recall@k (the answer is in the top k) and MRR@k (1 / its rank there, else 0), averaged over queries."""
    hits = [row[:k].index(a) + 1 if a in row[:k] else 0 for row, a in zip(ranked, answers)]
    return {f"recall@{k}": sum(h > 0 for h in hits) / len(hits),
            f"mrr@{k}": sum(1 / h for h in hits if h) / len(hits)}


def top1_agreement(a: list[list[str]], b: list[list[str]]) -> float:
    """Share of queries whose first result is the same document in both rankings."""
    return sum(x[0] == y[0] for x, y in zip(a, b)) / len(a)


def first_paragraph(doc: str) -> str:
    return " ".join(re.split(r"\n\s*\n", doc)[0].split())


def build(root: Path | None = None) -> list[dict]:
    """{"id": qualified name, "text": first docstring paragraph} for every public stdlib def/class with a unique one."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    by_text: dict[str, list[str]] = {}
    for file in sorted(root.rglob("*.py")):
        rel = file.relative_to(root)
        if any(p in SKIP_PARTS or (p.startswith("_") and p != "__init__.py") for p in rel.parts):
            continue
        module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        try:
            tree = ast.parse(file.read_text(errors="ignore"))
        except (SyntaxError, ValueError):
            continue
        _collect(tree, module, by_text)
    defined = Counter(name for names in by_text.values() for name in names)  # a name defined twice (if/else) is out
    return [{"id": names[0], "text": text} for text, names in by_text.items()
            if len(names) == 1 and defined[names[0]] == 1 and len(text.split()) >= MIN_WORDS]


def _collect(node, prefix: str, by_text: dict[str, list[str]]) -> None:
    for child in node.body:
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not child.name.startswith("_"):
            name = f"{prefix}.{child.name}"
            doc = ast.get_docstring(child)
            if doc:
                by_text.setdefault(first_paragraph(doc), []).append(name)
            if isinstance(child, ast.ClassDef):
                _collect(child, name, by_text)


if __name__ == "__main__":
    rows = build()
    data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode()
    DOCSTRINGS.write_bytes(gzip.compress(data, mtime=0))
    print(f"{DOCSTRINGS}: {len(rows)} names with a unique docstring paragraph")
