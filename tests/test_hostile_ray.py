"""Hostile input, round 3, on Ray: addresses that are not Ray's, actor resources a cluster cannot hold, and
embed_dataset's columns. A real local Ray cluster (test_ray's module fixture, 2 CPUs, no GPU) and the CLI as a user
runs it (a subprocess, a second Ray driver) or through click's CliRunner where Ray is never reached."""
from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")  # dev installs it; CI runs these

from engine.cli import main  # noqa: E402
from engine.errors import ConfigError, MissingColumnError  # noqa: E402
from test_ray import cluster  # noqa: E402,F401  (the module-scoped local cluster)

ROOT = Path(__file__).resolve().parents[1]
DEADLINE_S = 10  # docs/ray.md: an address that does not answer fails within 10 s
STARTUP_S = 10  # margin for the interpreter and the engine's imports on a loaded machine


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("a first text\na second text\na third text\n")
    return path


def _engine(*args, timeout: float = 120, env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    env = os.environ | {"PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")} | (env or {})
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "engine", "embed", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return proc, time.monotonic() - started


@pytest.mark.parametrize("given", ["--ray", "RAY_ADDRESS"])
def test_a_listener_that_does_not_answer_is_refused_within_the_deadline(given, corpus, tmp_path):
    """(HG2) a TCP port that accepts but never speaks, as --ray ADDRESS or as RAY_ADDRESS (which --ray auto and
    --ray alone connect to): refused within 10 s, not retried for minutes."""
    with socket.socket() as listener:  # connections complete in the backlog; nothing is ever read or written
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        if given == "--ray":
            proc, took = _engine(corpus, tmp_path / "out", "--ray", address)
        else:
            proc, took = _engine(corpus, tmp_path / "out", "--ray", "auto", env={"RAY_ADDRESS": address})
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"'{address}'{'' if given == '--ray' else ' (RAY_ADDRESS'}" in proc.stderr
    assert "is not a Ray cluster's address" in proc.stderr
    assert "did not answer gRPC's handshake" in proc.stderr and "ray start --head" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert took < DEADLINE_S + STARTUP_S, f"took {took:.1f} s"
    assert not (tmp_path / "out").exists()


def test_an_http_server_port_is_refused_as_not_ray(corpus, tmp_path):
    """(HG2) a port that answers as a web server (the dashboard's port without http://) is named as one."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        proc, _ = _engine(corpus, tmp_path / "out", "--ray", f"127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "is not a Ray cluster's address: it answered as an HTTP/1 server" in proc.stderr


def test_a_grpc_server_that_is_not_ray_is_refused(corpus, tmp_path):
    """(HG2) a gRPC server without Ray's GCS service answers the handshake but is not a cluster: named as such."""
    grpc = pytest.importorskip("grpc")
    from concurrent import futures

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        proc, took = _engine(corpus, tmp_path / "out", "--ray", f"127.0.0.1:{port}")
    finally:
        server.stop(None)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "is not a Ray cluster's address: it is a gRPC server without Ray's GCS service" in proc.stderr
    assert took < DEADLINE_S + STARTUP_S, f"took {took:.1f} s"


def test_the_gcs_address_given_as_ray_client_is_named(cluster, corpus, tmp_path):
    """(HG2) ray://GCS_ADDRESS (Ray Client's form on the GCS port) would hang in ray.init: refused with the fix."""
    proc, took = _engine(corpus, tmp_path / "out", "--ray", f"ray://{cluster}")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"it is the cluster's GCS address: pass --ray {cluster} (without ray://)" in proc.stderr
    assert took < DEADLINE_S + STARTUP_S, f"took {took:.1f} s"


@pytest.mark.parametrize("address", ["http://127.0.0.1:8265", "https://127.0.0.1:8265/"])
def test_the_dashboard_address_is_explained(address, corpus, tmp_path):
    """(UE7) the dashboard / Jobs API form is refused as a bad option value, naming the forms to use instead."""
    r = CliRunner().invoke(main, ["embed", str(corpus), str(tmp_path / "out"), "--ray", address])
    assert r.exit_code == 2, r.output
    assert "is the Ray dashboard's address" in r.output and "gaierror" not in r.output
    assert "127.0.0.1:6379" in r.output and "ray://127.0.0.1:10001" in r.output and "ray job submit" in r.output


@pytest.mark.parametrize("option", [["--gpus-per-actor", "1"], ["--cpus-per-actor", "64"]])
def test_actor_resources_the_cluster_lacks_are_refused_up_front(option, cluster, corpus, tmp_path):
    """(HG3) an actor no node can hold is refused before the job starts, with what the cluster has."""
    proc, _ = _engine(corpus, tmp_path / "out", "--ray", cluster, *option, timeout=90)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "the Ray cluster cannot hold one actor of" in proc.stderr and f"{option[0]} {option[1]}" in proc.stderr
    assert "1 node(s) with 2 CPUs and 0 GPUs in all" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_embed_dataset_refuses_actors_the_cluster_lacks(cluster, minilm_export):
    """(HG3) embed_dataset on a connected cluster: num_gpus / num_cpus it cannot hold are refused up front."""
    from engine.ray import embed_dataset

    ds = ray.data.from_items([{"text": "a text"}])
    with pytest.raises(ConfigError, match="cannot hold one actor of num_cpus 1, num_gpus 1: .* 0 GPUs in all"):
        embed_dataset(ds, model=str(minilm_export), num_gpus=1)
    with pytest.raises(ConfigError, match="cannot hold one actor of num_cpus 3, num_gpus 0: .* 2 CPUs and 0 GPUs"):
        embed_dataset(ds, model=str(minilm_export), num_cpus=3)


def test_embed_dataset_names_a_missing_text_column(cluster, minilm_export):
    """(UE6) a text or id column the dataset lacks: named with the dataset's columns, before any actor starts, and
    from the actor when the schema is only known at run time."""
    from engine.ray import embed_dataset

    ds = ray.data.from_items([{"doc": "d1", "body": "a text"}])
    with pytest.raises(MissingColumnError, match="text_column 'text' is not a column of the dataset; its columns "
                                                 "are 'doc', 'body'"):
        embed_dataset(ds, model=str(minilm_export))
    with pytest.raises(MissingColumnError, match="id_column 'id' is not a column"):
        embed_dataset(ds, model=str(minilm_export), text_column="body", id_column="id")
    lazy = ds.map_batches(lambda batch: batch, batch_format="pyarrow")  # schema unknown until it runs
    with pytest.raises(Exception, match="text_column 'text' is not a column of the dataset; its columns are 'doc', 'body'"):
        embed_dataset(lazy, model=str(minilm_export)).materialize()
    import engine.ray

    assert callable(engine.ray.embed_dataset), "importing the submodule rebound the name to the module"
