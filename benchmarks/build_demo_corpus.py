"""Build benchmarks/data/pydoc_topics.jsonl.gz, the sample corpus of `make demo` (committed; rebuild with this script).

Python's own documentation (PSF license, redistributable), one JSON object per line {"id", "topic", "text"}:
every paragraph of the pydoc help topics (the language reference; id "<topic>/<n>"), then the docstring paragraphs of
a fixed list of everyday stdlib modules (id "<module>.<qualname>/<n>", topic the module). Repeated paragraphs are left
out, so texts are unique. gzip'ed without a timestamp: rebuilding on the same Python gives identical bytes.
"""
from __future__ import annotations

import ast
import gzip
import json
import sys
import sysconfig
from pathlib import Path

from benchmarks.corpus import _paragraphs, pydoc_topics

DEMO_CORPUS = Path(__file__).resolve().parent / "data" / "pydoc_topics.jsonl.gz"


# Pure-Python stdlib modules whose docstrings read like user documentation.
MODULES = ("argparse", "base64", "calendar", "collections/__init__", "contextlib", "csv", "dataclasses", "datetime",
           "fractions", "functools", "glob", "gzip", "heapq", "json/__init__", "logging/__init__", "os", "pathlib",
           "pickle", "random", "shutil", "statistics", "string", "subprocess", "tempfile", "textwrap", "threading",
           "urllib/parse", "uuid", "zipfile/__init__")


def _docstrings(module: str):
    """(qualified name, docstring) of a stdlib module, parsed (never imported), in source order."""
    path = Path(sysconfig.get_paths()["stdlib"]) / f"{module}.py"
    if not path.is_file():
        return
    name = module.removesuffix("/__init__").replace("/", ".")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    yield name, ast.get_docstring(tree)

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                qual = f"{prefix}.{child.name}"
                yield qual, ast.get_docstring(child)
                yield from walk(child, qual)

    yield from walk(tree, name)


def demo_records() -> list[dict]:
    """Unique pydoc-topic and stdlib docstring paragraphs with stable ids."""
    seen, out = set(), []

    def add(key: str, topic: str, text: str | None) -> None:
        for n, para in enumerate(_paragraphs(text or "")):
            if para not in seen:
                seen.add(para)
                out.append({"id": f"{key}/{n}", "topic": topic, "text": para})

    for topic, text in pydoc_topics().items():
        add(topic, topic, text)
    for module in MODULES:
        for qual, doc in _docstrings(module):
            add(qual, module.removesuffix("/__init__").replace("/", "."), doc)
    return out


def main() -> None:
    records = demo_records()
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    DEMO_CORPUS.parent.mkdir(parents=True, exist_ok=True)
    DEMO_CORPUS.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    print(f"wrote {DEMO_CORPUS}: {len(records):,} paragraphs ({len(pydoc_topics())} pydoc topics, {len(MODULES)} stdlib "
          f"modules' docstrings) from Python {sys.version.split()[0]}, {DEMO_CORPUS.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
