"""engine embed resumes after a crash: kill -9 at several points, injected faults at the risky steps, exactly-once."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from embed_helpers import crash_before_part_record, embeddings, read_output, run, short_texts, write_corpus

from engine.bulk import ledger as ledger_mod
from engine.bulk.output import parts as writer_mod

ROOT = Path(__file__).resolve().parents[1]


def check_exactly_once(out: Path, ids: list, reference) -> None:
    """Every input id exactly once, embeddings equal to an uninterrupted run's, nothing half-written left."""
    table = read_output(out)
    got = table.column("id").to_pylist()
    assert len(got) == len(set(got)) == len(ids) and sorted(got) == sorted(ids)
    ref = read_output(reference)
    assert ref.column("id").to_pylist() == got
    np.testing.assert_allclose(embeddings(table), embeddings(ref), atol=1e-6)
    assert (out / "_SUCCESS").is_file()
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    success = json.loads((out / "_SUCCESS").read_text())
    assert success["rows"]["written"] == len(ids)


@pytest.fixture(scope="module")
def corpus(real_texts, tmp_path_factory):
    """600 real short texts with string ids, and an uninterrupted reference output (12 parts of 50 rows)."""
    root = tmp_path_factory.mktemp("resume")
    texts = short_texts(real_texts, 600, chars=100)
    ids = [f"p{i:04d}" for i in range(600)]
    src = write_corpus(root / "in.jsonl", "jsonl", texts, ids=ids)
    return root, src, ids


@pytest.fixture(scope="module")
def reference(corpus, minilm_export):
    root, src, _ = corpus
    out = root / "reference"
    r = run([src, out, *_opts(minilm_export)])
    assert r.exit_code == 0, r.output
    return out


def _opts(model) -> list:
    return ["--model", model, "--id-column", "id", "--rows-per-part", 50, "--window-rows", 25, "--threads", 1]


def _ledger_parts(out: Path) -> int:
    try:
        return sum('"kind": "part"' in line for line in (out / "_ledger.jsonl").read_text().splitlines())
    except FileNotFoundError:
        return 0


def _kill_when(cmd: list[str], condition, timeout: float = 120) -> bool:
    """Start the CLI, kill -9 it once condition() holds; True if it was killed mid-run (not finished first)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if condition():
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    proc.wait()
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(proc.stderr.read().decode())
    proc.stderr.close()
    return proc.returncode == -signal.SIGKILL



def _interrupt_after_part(monkeypatch, part: int, args: list) -> None:
    """Run the job and stop it (Ctrl-C) right after part `part` is recorded in the ledger."""
    real_append = ledger_mod.Ledger.append

    def stop(self, record):
        real_append(self, record)
        if record.get("kind") == "part" and record["part"] == part:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(ledger_mod.Ledger, "append", stop)
        assert run(args).exit_code == 1  # click turns KeyboardInterrupt into 'Aborted!', exit 1

def test_kill_9_at_several_points_then_resume(corpus, reference, minilm_export, tmp_path):
    _, src, ids = corpus
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "engine", "embed", str(src), str(out), "--quiet", *map(str, _opts(minilm_export))]
    kills = {
        # as soon as the output folder appears: the model is loaded, the scan starts, nothing is embedded yet
        "startup": lambda: out.is_dir(),
        # mid-write: a part's temp file exists (rows are being written into it)
        "mid-write": lambda: any(p.name.endswith(".tmp") for p in out.iterdir()) if out.is_dir() else False,
        # after some parts are committed
        "after 3 more parts": None,
        # right as a part lands: its final file appears (the ledger record may or may not follow)
        "at a rename": None,
    }
    results = {}
    for name, cond in kills.items():
        if name == "after 3 more parts":
            target = _ledger_parts(out) + 3
            cond = lambda target=target: _ledger_parts(out) >= target  # noqa: E731
        elif name == "at a rename":
            have = {p.name for p in out.glob("part-*.parquet")}
            cond = lambda have=have: bool({p.name for p in out.glob("part-*.parquet")} - have)  # noqa: E731
        results[name] = (_kill_when(cmd, cond), _ledger_parts(out))
    # At least three of the four runs really died mid-way, and progress was kept between them.
    assert sum(killed for killed, _ in results.values()) >= 3, results
    assert results["startup"][1] == 0 and results["after 3 more parts"][1] >= 3
    assert not (out / "_SUCCESS").exists() or all(not k for k, _ in results.values())
    r = run([src, out, *_opts(minilm_export)])
    assert r.exit_code == 0, r.output
    check_exactly_once(out, ids, reference)
    print("kill test:", results)


def test_crash_between_rename_and_ledger_record(corpus, reference, minilm_export, tmp_path, monkeypatch):
    """The riskiest moment: a part file is in place but not recorded. The rerun must redo it, not keep a copy."""
    _, src, ids = corpus
    out = tmp_path / "out"
    crash_before_part_record(monkeypatch, 4, [src, out, *_opts(minilm_export)])
    assert (out / "part-00004.parquet").exists() and _ledger_parts(out) == 4
    r = run([src, out, *_opts(minilm_export)])
    assert r.exit_code == 0, r.output
    assert "embedded 400 rows" in r.stdout and "4 of them resumed" in r.stdout  # parts 4..11 (4 is redone)
    check_exactly_once(out, ids, reference)


def test_crash_while_writing_leaves_a_temp_file_that_is_discarded(corpus, reference, minilm_export, tmp_path, monkeypatch):
    _, src, ids = corpus
    out = tmp_path / "out"
    real_write = writer_mod.PartWriter.write
    calls = {"n": 0}

    def failing_write(self, table):
        calls["n"] += 1
        real_write(self, table)
        if calls["n"] == 6:  # part 2, second window: its first window is already in the temp file
            raise OSError("simulated disk error")

    monkeypatch.setattr(writer_mod.PartWriter, "write", failing_write)
    r = run([src, out, *_opts(minilm_export)])
    assert r.exit_code == 1 and "simulated disk error" in r.output
    assert _ledger_parts(out) == 2
    monkeypatch.setattr(writer_mod.PartWriter, "write", real_write)
    # A torn ledger line (kill -9 during an append) is dropped too.
    with open(out / "_ledger.jsonl", "ab") as fh:
        fh.write(b'{"kind": "part", "part": 2, "fi')
    r = run([src, out, *_opts(minilm_export)])
    assert r.exit_code == 0, r.output
    check_exactly_once(out, ids, reference)


def test_unfinished_output_with_other_options_is_refused(corpus, minilm_export, tmp_path, monkeypatch):
    _, src, _ = corpus
    out = tmp_path / "out"
    _interrupt_after_part(monkeypatch, 1, [src, out, *_opts(minilm_export)])
    for extra, field in ((["--dtype", "int8"], "dtype"), (["--max-length", "32"], "max_length"),
                         (["--on-bad-row", "skip"], "on_bad_row")):
        r = run([src, out, *_opts(minilm_export), *extra])
        assert r.exit_code == 1, r.output
        assert "unfinished" in r.output and field in r.output and "--overwrite" in r.output
    r = run([src, out, *_opts(minilm_export)[:-4], "--rows-per-part", 100])
    assert r.exit_code == 1 and "rows_per_part: 50 -> 100" in r.output
    # Device, batching and window size do not change the result: resuming with them is allowed.
    r = run([src, out, *_opts(minilm_export), "--max-batch-tokens", 1024, "--window-rows", 40, "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "2 of them resumed" in r.stdout
    # --overwrite starts over with the new options.
    r = run([src, out, *_opts(minilm_export), "--dtype", "float16", "--overwrite"])
    assert r.exit_code == 0 and "resumed" not in r.stdout


def test_a_missing_or_damaged_part_file_is_redone(corpus, reference, minilm_export, tmp_path, monkeypatch):
    _, src, ids = corpus
    out = tmp_path / "out"
    _interrupt_after_part(monkeypatch, 5, [src, out, *_opts(minilm_export)])
    (out / "part-00001.parquet").unlink()
    with open(out / "part-00003.parquet", "ab") as fh:
        fh.write(b"junk")
    r = run([src, out, *_opts(minilm_export)])
    assert r.exit_code == 0, r.output
    assert "4 of them resumed" in r.stdout
    check_exactly_once(out, ids, reference)


def test_int8_resume_keeps_the_first_runs_calibration(corpus, minilm_export, tmp_path, monkeypatch):
    _, src, ids = corpus
    opts = [*_opts(minilm_export), "--dtype", "int8"]
    whole = tmp_path / "whole"
    assert run([src, whole, *opts]).exit_code == 0
    out = tmp_path / "out"
    _interrupt_after_part(monkeypatch, 2, [src, out, *opts])
    assert run([src, out, *opts]).exit_code == 0
    a, b = read_output(whole), read_output(out)
    assert a.schema.metadata == b.schema.metadata  # the same ranges in every part of both outputs
    assert np.abs(embeddings(a).astype(int) - embeddings(b).astype(int)).max() <= 1
