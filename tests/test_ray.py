"""engine embed --ray and engine.ray.embed_dataset on a real local Ray cluster (no mocks).

One cluster (2 CPUs) is started for the module by ray.init in this process; each `engine embed --ray ADDRESS` is a
CLI subprocess, a second Ray driver, as a user would run it. The corpus: 2,000 real pydoc paragraphs with string ids
and a few bad (null or empty) texts, as parquet whose row groups (300 rows) straddle the parts (100 rows). The model:
all-MiniLM-L6-v2 at --max-length 32, so a run lasts long enough to be killed mid-run and short enough for CI.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embed_helpers import embeddings, read_output, run

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")  # dev installs it; CI runs these
psutil = pytest.importorskip("psutil")

ROOT = Path(__file__).resolve().parents[1]
ROWS, PART = 2000, 100
BAD = {7: None, 512: "", 1499: None}  # row -> bad text
ACTOR = "MapWorker(MapBatches(EmbedUnits))"


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster for the module; its workers import engine from this checkout (PYTHONPATH is inherited)."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        where = ray.get(ray.remote(lambda: __import__("engine").__file__).remote())
        assert where.startswith(str(ROOT)), f"Ray workers import engine from {where}, not from {ROOT}"
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, real_texts) -> Path:
    texts = [BAD.get(i, real_texts[i % len(real_texts)]) for i in range(ROWS)]
    path = tmp_path_factory.mktemp("ray-corpus") / "corpus.parquet"
    pq.write_table(pa.table({"doc": [f"doc-{i:05d}" for i in range(ROWS)], "text": texts}), path, row_group_size=300)
    return path


def _args(corpus: Path, out: Path, model: Path, policy: str) -> list[str]:
    return [str(corpus), str(out), "--id-column", "doc", "--on-bad-row", policy, "--model", str(model),
            "--max-length", "32", "--rows-per-part", str(PART), "--quiet"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, corpus, minilm_export) -> pa.Table:
    """The local runner's output of the corpus with --on-bad-row empty (sorted by id)."""
    out = tmp_path_factory.mktemp("ray-ref") / "local"
    result = run(_args(corpus, out, minilm_export, "empty"))
    assert result.exit_code == 0, result.output
    return read_output(out)


def _engine(args: list[str], **kw) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    return subprocess.Popen([sys.executable, "-m", "engine", "embed", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _finish(proc: subprocess.Popen, timeout: float = 240) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err[-4000:]}"
    return err


def _parts(out: Path) -> list[dict]:
    ledger = out / "_ledger.jsonl"
    if not ledger.exists():
        return []
    return [r for r in (json.loads(line) for line in ledger.read_text().splitlines() if line.endswith("}"))
            if r.get("kind") == "part"]


def _wait_for_commits(out: Path, proc: subprocess.Popen, n: int = 1, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if len(_parts(out)) >= n:
            return len(_parts(out))
        time.sleep(0.05)
    raise AssertionError(f"no unit committed in {out} (exit {proc.poll()}): {proc.stderr.read()[-3000:] if proc.poll() is not None else ''}")


def _assert_matches(out: Path, reference: pa.Table, dropped: set[str] = frozenset()) -> None:
    """Every id exactly once (the reference's, less dropped ones), embeddings within 1e-6, _SUCCESS, no temp files."""
    table = read_output(out)
    ids = table.column("doc" if "doc" in table.column_names else "id").to_pylist()
    assert len(ids) == len(set(ids)), "an id appears twice"
    ref = reference.filter(pa.array([i not in dropped for i in reference.column("id").to_pylist()]))
    assert ids == ref.column("id").to_pylist()
    assert float(np.abs(embeddings(table) - embeddings(ref)).max()) <= 1e-6
    assert (out / "_SUCCESS").is_file()
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    parts = _parts(out)
    assert sorted(p["part"] for p in parts) == list(range(ROWS // PART)), "a unit committed twice or never"
    assert json.loads((out / "_SUCCESS").read_text())["rows"]["written"] == len(ids)


def test_same_output_as_the_local_runner(cluster, corpus, reference, minilm_export, tmp_path):
    out = tmp_path / "ray"
    _finish(_engine(_args(corpus, out, minilm_export, "empty") + ["--ray", cluster, "--actors", "2"]))
    _assert_matches(out, reference)
    assert read_output(out).schema == reference.schema  # same Arrow types and part metadata
    assert all(p["unit"] and p["worker"] for p in _parts(out))  # content key and worker recorded per unit
    assert len({p["worker"] for p in _parts(out)}) == 2, "both actors should have embedded units"


def _our_actors() -> list[psutil.Process]:
    """EmbedUnits actor processes of this module's cluster (descendants of this process)."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if ACTOR in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:
            continue
    return found


def test_a_killed_actor_is_replaced_and_every_id_is_written_once(cluster, corpus, reference, minilm_export, tmp_path):
    out = tmp_path / "ray"
    proc = _engine(_args(corpus, out, minilm_export, "skip") + ["--ray", cluster, "--actors", "2"])
    at_kill = _wait_for_commits(out, proc)
    victims = _our_actors()
    assert victims, "no EmbedUnits actor process found"
    os.kill(victims[0].pid, signal.SIGKILL)
    assert at_kill < ROWS // PART, "the job finished before an actor could be killed"
    _finish(proc)
    _assert_matches(out, reference, dropped={f"doc-{i:05d}" for i in BAD})


def test_a_killed_driver_resumes_from_the_committed_units(cluster, corpus, reference, minilm_export, tmp_path):
    out = tmp_path / "ray"
    args = _args(corpus, out, minilm_export, "skip") + ["--ray", cluster, "--actors", "2"]
    proc = _engine(args)
    _wait_for_commits(out, proc, n=3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    before = {p["part"]: p for p in _parts(out)}
    assert 3 <= len(before) < ROWS // PART and not (out / "_SUCCESS").exists()
    _finish(_engine([a for a in args if a != "--quiet"]))
    _assert_matches(out, reference, dropped={f"doc-{i:05d}" for i in BAD})
    after = _parts(out)
    assert len(after) == ROWS // PART, "a unit committed before the kill was redone"
    assert all(next(p for p in after if p["part"] == k) == rec for k, rec in before.items())


def test_bad_rows_fail_under_error_as_locally(cluster, corpus, minilm_export, tmp_path):
    local = run(_args(corpus, tmp_path / "local", minilm_export, "error"))
    proc = _engine(_args(corpus, tmp_path / "ray", minilm_export, "error") + ["--ray", cluster])
    _, err = proc.communicate(timeout=240)
    assert local.exit_code == proc.returncode == 1
    assert "doc-00007" in err and "null text" in err and "--on-bad-row skip" in err
    assert not list((tmp_path / "ray").glob("part-*"))


def test_an_unreachable_address_fails_clearly_and_fast(tmp_path, corpus):
    with socket.socket() as s:  # a free loopback port: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    proc = _engine([str(corpus), str(tmp_path / "out"), "--ray", f"127.0.0.1:{port}"])
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - started < 30
    assert proc.returncode == 1
    assert f"cannot reach the Ray cluster at '127.0.0.1:{port}'" in err and "ray start --head" in err
    assert not (tmp_path / "out").exists()


def test_embed_dataset_adds_the_embedding_column_of_engine_embed(cluster, reference, real_texts, minilm_export, embedder):
    from engine.ray import embed_dataset

    texts = [real_texts[i] for i in range(200)]
    ds = ray.data.from_items([{"doc": f"d{i}", "text": t} for i, t in enumerate(texts)], override_num_blocks=4)
    table = pa.concat_tables(list(embed_dataset(ds, model=str(minilm_export), id_column="doc", max_length=32)
                                  .iter_batches(batch_format="pyarrow", batch_size=None)))
    assert table.schema.field("embedding").type == reference.schema.field("embedding").type
    order = np.argsort([int(d[1:]) for d in table.column("doc").to_pylist()])
    from engine import Embedder

    expected = Embedder(minilm_export, device="cpu", max_length=32).encode(texts)
    assert float(np.abs(embeddings(table)[order] - expected).max()) <= 1e-6
    bad = ray.data.from_items([{"doc": "x1", "text": "fine"}, {"doc": "x2", "text": None}])
    with pytest.raises(Exception, match="id 'x2'"):
        embed_dataset(bad, model=str(minilm_export), id_column="doc").materialize()
    kept = embed_dataset(bad, model=str(minilm_export), on_bad_row="skip").take_all()
    assert [r["doc"] for r in kept] == ["x1"]


def test_ray_is_imported_only_with_ray(tmp_path, real_texts, minilm_export):
    """The local runner never imports Ray; without the [ray] extra, --ray names the pip command."""
    corpus = tmp_path / "small.parquet"
    pq.write_table(pa.table({"text": real_texts[:40]}), corpus)
    code = ("import sys\n"
            "from click.testing import CliRunner\n"
            "from engine.cli import main\n"
            f"r = CliRunner().invoke(main, ['embed', {str(corpus)!r}, {str(tmp_path / 'out')!r},"
            f" '--model', {str(minilm_export)!r}, '--max-length', '16', '-q'])\n"
            "assert r.exit_code == 0, r.output\n"
            "assert 'ray' not in sys.modules, 'the local runner imported ray'\n"
            "sys.modules['ray'] = None  # as if the [ray] extra were not installed\n"
            f"r = CliRunner().invoke(main, ['embed', {str(corpus)!r}, {str(tmp_path / 'o2')!r}, '--ray'])\n"
            "assert r.exit_code == 1 and \"pip install 'embedding-engine[ray]'\" in r.output, r.output\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
