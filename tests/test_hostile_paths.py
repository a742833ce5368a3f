"""Issue 17, data loss: what `engine export` and `engine embed` may delete or replace (items 1, 2, 3, 14, 22, 23)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from embed_helpers import read_output, write_corpus

from engine.cli import main
from export import OutputExistsError, read_manifest
from export.paths import check_output_path

ROOT = Path(__file__).resolve().parents[1]


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A working directory holding a user's file, and a fake home directory beside it."""
    work = tmp_path / "home" / "work"
    work.mkdir(parents=True)
    (work / "precious.txt").write_text("keep me")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(work)
    return work


def _intact(work: Path) -> bool:
    return (work / "precious.txt").read_text() == "keep me"


def _no_partials(parent: Path) -> bool:
    return not [p for p in parent.iterdir() if ".partial-" in p.name]


@pytest.mark.parametrize("out", ["", ".", "..", "~"])
def test_item1_export_to_an_empty_path_the_cwd_a_parent_or_home_is_refused(out, workdir, tiny_models):
    r = cli("export", tiny_models["bert"], out, "--overwrite")
    assert r.exit_code == (2 if out == "" else 1), r.output  # an empty OUT_DIR is a bad option value: a usage error
    assert "empty path" in r.output or "working directory" in r.output or "home directory" in r.output
    assert _intact(workdir) and _no_partials(workdir.parent)


def test_item1_the_guard_refuses_the_root_and_accepts_a_new_folder(workdir):
    with pytest.raises(OutputExistsError, match="filesystem root"):
        check_output_path("/", what="OUT_DIR", error=OutputExistsError)
    assert check_output_path("out") == Path("out")


def test_item2_export_never_deletes_its_own_source(tiny_models, tmp_path):
    parent = tmp_path / "models"
    model = parent / "bert"
    shutil.copytree(tiny_models["bert"], model)
    (parent / "unrelated.txt").write_text("keep me")
    before = sorted(p.name for p in model.iterdir())
    for out in (model, parent):  # OUT_DIR == MODEL, and OUT_DIR a parent of MODEL
        r = cli("export", model, out, "--overwrite")
        assert r.exit_code == 1 and "which this job reads, lies inside OUT_DIR" in r.output, r.output
    r = cli("export", model, model / "onnx")  # an output inside the source
    assert r.exit_code == 1 and "lies inside the model folder" in r.output
    assert sorted(p.name for p in model.iterdir()) == before
    assert (parent / "unrelated.txt").read_text() == "keep me" and _no_partials(parent)


def test_item2_overwrite_only_replaces_an_earlier_export(tiny_models, tmp_path):
    out = tmp_path / "e"
    out.mkdir()
    (out / "notes.txt").write_text("not an export")
    r = cli("export", tiny_models["bert"], out, "--overwrite")
    assert r.exit_code == 1 and "not an earlier export" in r.output
    assert (out / "notes.txt").read_text() == "not an export"


@pytest.mark.parametrize("out", ["", ".", "..", "HOME"])
def test_item3_embed_to_an_empty_path_the_cwd_a_parent_or_home_is_refused(out, workdir, minilm_export, tmp_path):
    src = write_corpus(tmp_path / "in.jsonl", "jsonl", ["a text", "another text"])
    out = os.environ["HOME"] if out == "HOME" else out
    r = cli("embed", src, out, "--model", minilm_export, "--overwrite")
    assert r.exit_code in (1, 2), r.output
    assert "empty path" in r.output or "working directory" in r.output or "home directory" in r.output
    assert _intact(workdir) and src.is_file()


def test_item3_embed_overwrite_refuses_a_folder_that_is_not_an_engine_output(tmp_path, minilm_export):
    src = write_corpus(tmp_path / "in.jsonl", "jsonl", ["a text", "another text"])
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"\xff\xd8")
    r = cli("embed", src, out, "--model", minilm_export, "--overwrite")
    assert r.exit_code == 1 and "does not look like an output" in r.output and "holiday.jpg" in r.output
    assert (out / "holiday.jpg").read_bytes() == b"\xff\xd8"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("embed", src, empty, "--model", minilm_export, "--overwrite").exit_code == 0


def test_item14_a_symlinked_out_dir_is_refused_before_exporting(tiny_models, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    r = cli("export", tiny_models["bert"], link)
    assert r.exit_code == 1 and "symbolic link" in r.output and str(real) in r.output
    assert "exporting embed graph" not in r.output  # refused up front, not after the export
    assert link.is_symlink() and not any(real.iterdir()) and _no_partials(tmp_path)


def test_item22_a_killed_export_leaves_a_partial_that_the_next_export_removes(tiny_models, tmp_path):
    out = tmp_path / "e"
    cmd = [sys.executable, "-m", "engine", "export", str(tiny_models["bert"]), str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and not list(tmp_path.glob(".e.partial-*/embed.onnx")):
        time.sleep(0.01)  # kill it mid-export: after the first graph is written
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partials = [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    assert proc.returncode == -signal.SIGKILL and partials and not out.exists()
    # A live export's partial (lock held) must survive a concurrent export.
    from export.partials import hold_partial, partial_prefix

    live = tmp_path / (partial_prefix(out) + "live")
    live.mkdir()
    lock = hold_partial(live)
    try:
        r = cli("export", tiny_models["bert"], out)
        assert r.exit_code == 0, r.output
        assert [p.name for p in tmp_path.iterdir() if ".partial-" in p.name] == [live.name]
    finally:
        lock.close()
    assert read_manifest(out)["architecture"] == "bert" and not (out / ".lock").exists()


def test_item23_a_deleted_part_is_noticed_and_redone(tmp_path, minilm_export):
    texts = [f"text number {i} about parquet files" for i in range(12)]
    src = write_corpus(tmp_path / "in.jsonl", "jsonl", texts)
    out = tmp_path / "out"
    args = ["embed", src, out, "--model", minilm_export, "--rows-per-part", 4]
    assert cli(*args).exit_code == 0
    (out / "part-00001.parquet").unlink()
    r = cli(*args)
    assert r.exit_code == 0, r.output
    assert "already complete" not in r.output and "part-00001.parquet" in r.output
    assert read_output(out).column("id").to_pylist() == list(range(12)) and (out / "_SUCCESS").is_file()
    r = cli(*args)
    assert r.exit_code == 0 and "already complete" in r.output
