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
