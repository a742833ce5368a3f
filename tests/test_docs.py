"""Every fenced code block of README.md and docs/*.md runs: python blocks in-process, bash blocks in a shell.

Blocks of one page run in order in one sandbox folder (a later block may read an earlier block's output), with
`engine` on PATH, the session's warm export cache as $EMBEDDING_ENGINE_CACHE, a small real corpus in corpus/ and
corpus.txt, and, for pages that use it without making it, an export in out/minilm. Blocks fenced as `text` are
synopses or sample output and are not run.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
RUNNABLE = ("python", "bash")
MAKES_ITS_OWN_EXPORT = {"README.md", "export.md"}  # pages whose blocks create out/minilm themselves


def blocks(page: Path) -> list[tuple[str, str]]:
    return [(lang, code) for lang, code in FENCE.findall(page.read_text())]


def test_every_block_is_runnable_or_marked_text():
    for page in PAGES:
        for lang, code in blocks(page):
            assert lang in RUNNABLE + ("text",), f"{page.name}: a ```{lang or '(no language)'} block; use python, bash or text"


def _sandbox(page: Path, root: Path, minilm_export: Path, real_texts: list[str]) -> None:
    (root / "corpus").mkdir(parents=True)
    with gzip.open(ROOT / "benchmarks" / "data" / "pydoc_topics.jsonl.gz", "rt") as fh:
        rows = [json.loads(line) for _, line in zip(range(60), fh)]
    (root / "corpus" / "pydoc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "corpus.txt").write_text("\n".join(real_texts[:20]) + "\n")
    if page.name not in MAKES_ITS_OWN_EXPORT:
        shutil.copytree(minilm_export, root / "out" / "minilm")


def _run_bash(code: str, cwd: Path, env: dict, groups: list[int], timeout: float = 300) -> tuple[int | str, str, str]:
    """Run a bash block in its own process group (added to groups), output to files: a server the block leaves running
    for the page's later blocks holds no pipe open, and a timed-out block is killed with its group."""
    with open(cwd / ".block.out", "w+") as out, open(cwd / ".block.err", "w+") as err:
        proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", code], cwd=cwd, env=env, stdout=out, stderr=err,
                                start_new_session=True)
        groups.append(proc.pid)
        try:
            rc: int | str = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_groups([proc.pid])
            proc.wait()
            rc = f"none: timed out after {timeout:.0f} s"
        out.seek(0)
        err.seek(0)
        return rc, out.read(), err.read()


def _kill_groups(groups: list[int]) -> None:
    """Kill whatever is left of these process groups (servers started in the background by a page's blocks)."""
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@pytest.mark.parametrize("page", [p for p in PAGES if any(lang in RUNNABLE for lang, _ in blocks(p))], ids=lambda p: p.name)
def test_page_blocks_run(page, tmp_path, minilm_export, engine_cache, real_texts, monkeypatch):
    runnable = [(lang, code) for lang, code in blocks(page) if lang in RUNNABLE]
    _sandbox(page, tmp_path, minilm_export, real_texts)
    env = os.environ | {"EMBEDDING_ENGINE_CACHE": str(engine_cache),
                        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                        "PYTHONPATH": str(ROOT)}
    monkeypatch.setenv("EMBEDDING_ENGINE_CACHE", str(engine_cache))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs:{page.name}"}
    groups: list[int] = []  # the bash blocks' process groups, killed when the page ends, passed or failed
    try:
        for i, (lang, code) in enumerate(runnable):
            where = f"{page.name} block {i + 1} ({lang}):\n{code}"
            if lang == "bash":
                rc, out, err = _run_bash(code, tmp_path, env, groups)
                assert rc == 0, f"{where}\nexit {rc}\n{out[-2000:]}\n{err[-4000:]}"
            else:
                try:
                    # dont_inherit: a block runs as a fresh script would, without this file's `from __future__` flags
                    exec(compile(code, f"<{page.name} block {i + 1}>", "exec", dont_inherit=True), namespace)
                except Exception as err:  # report which block failed, with its code
                    raise AssertionError(f"{where}\nraised {type(err).__name__}: {err}") from err
    finally:
        _kill_groups(groups)
