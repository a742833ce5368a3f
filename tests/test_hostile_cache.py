"""Issue 23, the first-use export cache: what a model folder's cached export may be, and what happens when it is not.

A model folder is exported once into the cache; these tests damage, redirect and lock that cache and check that the
engine never serves the wrong export, rebuilds a damaged entry, names the setting of a cache it cannot write, and runs
the export in a child process (torch never stays loaded in the caller). Exports of the tiny BERT take seconds; where a
test only needs to show that an entry is not served, it runs torch-free, where the rebuild it would start stops at
once with MissingExtraError.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from engine import Embedder
from engine.cli import main
from engine.errors import ConfigError, ModelFolderError

HERE = Path(__file__).parent
ROOT = HERE.parent


def run_python(code: str, torch_free: bool = False, env: dict | None = None) -> subprocess.CompletedProcess:
    """code in a fresh interpreter (torch_free: one where torch, transformers and matplotlib cannot be imported)."""
    args = [str(HERE / "torch_free.py"), "-c", code] if torch_free else ["-c", code]
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=os.environ | (env or {}))


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def cached(tiny_models, tmp_path_factory):
    """A copy of the tiny BERT, exported on first use into a fresh cache by Embedder() in a fresh interpreter."""
    root = tmp_path_factory.mktemp("hostile-cache")
    folder = shutil.copytree(tiny_models["bert"], root / "models" / "bert")
    cache = root / "cache"
    code = ("import json, sys\nfrom engine import Embedder\n"
            f"e = Embedder({str(folder)!r}, device='cpu', cache_dir={str(cache)!r})\n"
            "print(json.dumps({'model_dir': str(e.model_dir), 'torch': [m for m in ('torch', 'transformers') if m in sys.modules],\n"
            "                  'vector': e.encode(['a cached export']).tolist()}))\n")
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return types.SimpleNamespace(folder=folder, cache=cache, target=Path(out["model_dir"]), torch=out["torch"],
                                 stderr=proc.stderr, vector=np.array(out["vector"]), root=root)


def copy_cache(cached, name: str, index: bool = True) -> Path:
    """A copy of the fixture's cache (without its .index when index is False), to damage without touching the fixture."""
    dest = cached.root / name
    shutil.copytree(cached.cache, dest, ignore=None if index else shutil.ignore_patterns(".index"))
    return dest


def index_entry(cache: Path, target: Path) -> Path:
    """The one .index entry naming target."""
    (entry,) = [p for p in (cache / ".index").glob("*.json") if json.loads(p.read_text())["target"] == target.name]
    return entry


def test_a_first_use_export_runs_in_a_child_and_leaves_torch_unloaded(cached):
    """(RE3) Embedder(model folder) on a cold cache exports in a child process, says so, and never imports torch."""
    assert cached.target.parent == cached.cache and (cached.target / "manifest.json").is_file()
    assert cached.torch == []
    assert "exporting" in cached.stderr and "first use" in cached.stderr and str(cached.folder) in cached.stderr


def test_an_export_error_in_the_child_reaches_the_caller_typed(tiny_models, tmp_path):
    """(RE3) A parity miss in the child process is the caller's ModelFolderError, with its message and its report."""
    import torch
    from transformers import AutoModel

    folder = shutil.copytree(tiny_models["bert"], tmp_path / "bert-huge")
    model = AutoModel.from_pretrained(folder)
    with torch.no_grad():  # finite in fp32, overflows fp16 (as in test_export_precision)
        for layer in model.encoder.layer:
            layer.output.dense.weight.mul_(1e7)
    model.save_pretrained(folder)
    code = ("import json, sys\nfrom engine import Embedder\nfrom engine.errors import ModelFolderError\n"
            "from export import ParityError\n"
            f"try:\n    Embedder({str(folder)!r}, precision='fp16', device='cpu', cache_dir={str(tmp_path / 'cache')!r})\n"
            "except ModelFolderError as err:\n"
            "    print(json.dumps({'message': str(err), 'cause': type(err.__cause__).__name__,\n"
            "                      'cause_message': str(err.__cause__), 'report': err.report,\n"
            "                      'torch': 'torch' in sys.modules}))\n"
            "else:\n    raise SystemExit('no error')\n")
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "failed parity" in got["message"] and got["message"] == got["cause_message"], got
    assert got["cause"] == "ParityError" and got["torch"] is False
    assert got["report"]["embed"]["outputs"]["sentence_embedding"]["finite"] is False
    assert "Traceback" not in proc.stderr


def test_an_index_entry_naming_another_export_is_not_followed(cached):
    """(SW6) A .index entry pointing the model folder at an export made from other content is dropped: the folder's
    own export is found by its content."""
    cache = copy_cache(cached, "redirected")
    target = cache / cached.target.name
    other = shutil.copytree(target, cache / "minilm-fp32-0123456789abcdef")
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["source"] |= {"content_hash": "0" * 64, "path": "/models/other"}
    (other / "manifest.json").write_text(json.dumps(manifest))
    entry = index_entry(cache, target)
    for forged in ({"target": other.name},  # the probe's: only a target
                   {"target": other.name, "model": str(cached.folder.resolve()), "content_hash": "0" * 64}):
        entry.write_text(json.dumps(forged))
        emb = Embedder(cached.folder, device="cpu", cache_dir=str(cache))
        assert emb.model_dir == target, forged
        assert json.loads(entry.read_text())["target"] == target.name  # the entry is rewritten to the real export
        np.testing.assert_allclose(emb.encode(["a cached export"]), cached.vector, atol=1e-6)


def test_a_cached_export_made_from_other_content_is_not_served(cached):
    """(SW6) An export is used only if its manifest says it was made from the content its index record names
    (torch-free, the rebuild stops at once: the entry was not served)."""
    cache = copy_cache(cached, "renamed")
    manifest_file = cache / cached.target.name / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["source"]["content_hash"] = "0" * 64
    manifest_file.write_text(json.dumps(manifest))
    proc = run_python(f"from engine import Embedder\nEmbedder({str(cached.folder)!r}, device='cpu', "
                      f"cache_dir={str(cache)!r})\n", torch_free=True)
    assert proc.returncode != 0 and "embedding-engine[export]" in proc.stderr, proc.stderr
    assert "rebuilding the cached export" in proc.stderr and "made from other content" in proc.stderr


@pytest.mark.parametrize("damage, reported", [
    (lambda data: data[:1000], "is 1000 bytes"),  # lost bytes
    (lambda data: b"\xff" * 64 + data[64:], "does not match the sha256"),  # unchanged size, onnxruntime cannot parse it
], ids=["truncated", "unparsable"])
def test_a_damaged_cached_graph_is_rebuilt_not_reported(cached, damage, reported):
    """(UE2) A cached embed.onnx that lost bytes, or of unchanged size but unparsable, is checked (size, then byte by
    byte) and rebuilt (torch-free the rebuild stops at once), not reported with an 'engine export ... --overwrite' the
    user never asked for."""
    cache = copy_cache(cached, f"damaged-{reported.split()[-1]}")
    graph = cache / cached.target.name / "embed.onnx"
    graph.write_bytes(damage(graph.read_bytes()))
    proc = run_python(f"from engine import Embedder\nEmbedder({str(cached.folder)!r}, device='cpu', "
                      f"cache_dir={str(cache)!r})\n", torch_free=True)
    assert proc.returncode != 0 and "embedding-engine[export]" in proc.stderr, proc.stderr
    assert "rebuilding the cached export" in proc.stderr and reported in proc.stderr
    assert "--overwrite" not in proc.stderr


def test_a_cache_entry_that_lost_its_manifest_is_rebuilt(cached):
    """(UE2) A cached export without its manifest.json is rebuilt in place, under the cache lock."""
    cache = copy_cache(cached, "no-manifest")
    (cache / cached.target.name / "manifest.json").unlink()
    emb = Embedder(cached.folder, device="cpu", cache_dir=str(cache))
    assert emb.model_dir == cache / cached.target.name and (emb.model_dir / "manifest.json").is_file()
    np.testing.assert_allclose(emb.encode(["a cached export"]), cached.vector, atol=1e-6)
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == [".index", cached.target.name]


@pytest.fixture
def read_only(tmp_path):
    """An empty folder nobody can write into (chmod, and for root chattr +i); removed writable again afterwards."""
    folder = tmp_path / "read-only-cache"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = os.geteuid() == 0 and shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)]).returncode == 0
    try:
        try:
            (folder / ".probe").touch()
        except OSError:
            yield folder
        else:
            pytest.skip("cannot make a folder read-only here (root without chattr)")
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_a_read_only_cache_is_named_with_its_setting(cached, read_only, tmp_path):
    """(UE3) A cold model and a cache that cannot be written: a ConfigError naming the folder, the variable and the
    flag, from the API and the CLI."""
    with pytest.raises(ConfigError, match="EMBEDDING_ENGINE_CACHE") as err:
        Embedder(cached.folder, device="cpu", cache_dir=str(read_only))
    assert str(read_only) in str(err.value) and "--cache-dir" in str(err.value)
    (tmp_path / "in.txt").write_text("a text\n")
    r = cli("embed", tmp_path / "in.txt", tmp_path / "out", "--model", cached.folder, "--cache-dir", read_only)
    assert r.exit_code == 2 and "EMBEDDING_ENGINE_CACHE" in r.output and "Traceback" not in r.output, r.output


def test_a_cache_path_that_is_a_file_is_named_with_its_setting(cached, tmp_path, monkeypatch):
    """(UE3) A cache path that is a file (given, or from $EMBEDDING_ENGINE_CACHE): a ConfigError naming both."""
    file = tmp_path / "cache-file"
    file.write_text("not a folder")
    for cache_dir in (str(file), str(file / "below")):
        with pytest.raises(ConfigError, match="--cache-dir") as err:
            Embedder(cached.folder, device="cpu", cache_dir=cache_dir)
        assert cache_dir in str(err.value) and "EMBEDDING_ENGINE_CACHE" in str(err.value)
    monkeypatch.setenv("EMBEDDING_ENGINE_CACHE", str(file))
    with pytest.raises(ConfigError, match="EMBEDDING_ENGINE_CACHE"):
        Embedder(cached.folder, device="cpu")


def test_a_warm_read_only_cache_still_serves(cached, tmp_path):
    """(UE3) A read-only cache that holds the export is read, not written: the model loads."""
    cache = copy_cache(cached, "warm-read-only", index=False)
    for path in [cache, *cache.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        assert Embedder(cached.folder, device="cpu", cache_dir=str(cache)).model_dir == cache / cached.target.name
    finally:
        for path in [cache, *cache.rglob("*")]:
            path.chmod(0o755)


def test_verify_cache_does_not_serve_an_export_whose_bytes_changed(cached, tmp_path):
    """(SW7) Random bytes in a cached embed.onnx of unchanged size: --verify-cache / verify_cache=True hashes the
    export's files against its manifest; a cache entry is rebuilt (torch-free: stops at once), an export folder
    given directly is refused with the file named."""
    cache = copy_cache(cached, "scribbled")
    graph = cache / cached.target.name / "embed.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2: len(data) // 2 + 4096] = np.random.default_rng(0).bytes(4096)
    graph.write_bytes(bytes(data))
    with pytest.raises(ModelFolderError, match="does not match the sha256"):
        Embedder(graph.parent, device="cpu", verify_cache=True)
    (tmp_path / "in.txt").write_text("a text\n")
    proc = subprocess.run([sys.executable, str(HERE / "torch_free.py"), "engine", "embed", str(tmp_path / "in.txt"),
                           str(tmp_path / "out"), "--model", str(cached.folder), "--cache-dir", str(cache),
                           "--verify-cache", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "embedding-engine[export]" in proc.stderr, proc.stderr


def test_verify_cache_notices_a_model_folder_refilled_in_place(cached):
    """(SW7) Other weights written into the model folder under the same names, sizes and mtimes: the cheap key still
    finds the old export (the documented trade-off); verify_cache=True hashes the folder and does not serve it."""
    cache = copy_cache(cached, "refilled")
    folder = shutil.copytree(cached.folder, cached.root / "elsewhere" / "bert")  # same name, same content
    assert Embedder(folder, device="cpu", cache_dir=str(cache)).model_dir == cache / cached.target.name
    weights = folder / "model.safetensors"
    st = weights.stat()
    data = bytearray(weights.read_bytes())
    data[-256:] = bytes(255 - b for b in data[-256:])
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert Embedder(folder, device="cpu", cache_dir=str(cache)).model_dir == cache / cached.target.name  # stale
    proc = run_python(f"from engine import Embedder\nEmbedder({str(folder)!r}, device='cpu', cache_dir={str(cache)!r}, "
                      "verify_cache=True)\n", torch_free=True)
    assert proc.returncode != 0 and "embedding-engine[export]" in proc.stderr, proc.stderr


def test_an_empty_cache_dir_is_refused_not_taken_for_the_default(cached, tmp_path):
    """(UE3) cache_dir '' (an unset variable in --cache-dir "$DIR") is a ConfigError, not silently the default cache."""
    for value in ("", "  "):
        with pytest.raises(ConfigError, match="cache_dir"):
            Embedder(cached.folder, device="cpu", cache_dir=value)
    (tmp_path / "in.txt").write_text("a text\n")
    r = cli("embed", tmp_path / "in.txt", tmp_path / "out", "--model", cached.folder, "--cache-dir", "")
    assert r.exit_code == 2 and "cache_dir" in r.output and "Traceback" not in r.output, r.output
