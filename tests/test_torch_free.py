"""The core install (no torch, transformers or matplotlib) runs an exported folder: same vectors as the full install."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds

from engine import Embedder

HERE = Path(__file__).parent
ROOT = HERE.parent


def torch_free(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HERE / "torch_free.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_hook_really_blocks_torch():
    proc = torch_free("-c", "import torch")
    assert proc.returncode != 0 and "blocked: torch-free install" in proc.stderr


def test_embedder_without_torch_gives_the_same_vectors(minilm_export, real_texts, tmp_path):
    texts = real_texts[:64]
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    code = (f"import json, numpy as np\nfrom engine import Embedder\n"
            f"texts = json.load(open({str(tmp_path / 'texts.json')!r}))\n"
            f"emb = Embedder({str(minilm_export)!r}, device='cpu')\n"
            f"np.save({str(tmp_path / 'v.npy')!r}, emb.encode(texts))\n")
    proc = torch_free("-c", code)
    assert proc.returncode == 0, proc.stderr
    full = Embedder(minilm_export, device="cpu").encode(texts)
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), full)


def test_engine_embed_without_torch_matches_full_install(minilm_export, real_texts, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in real_texts[:40]))
    proc = torch_free("engine", "embed", str(src), str(tmp_path / "out"), "--model", str(minilm_export), "--device", "cpu", "-q")
    assert proc.returncode == 0, proc.stderr
    table = ds.dataset(tmp_path / "out").to_table().sort_by("id")
    got = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    full = Embedder(minilm_export, device="cpu").encode(real_texts[:40])
    np.testing.assert_allclose(got, full, atol=1e-6)


def test_model_folder_without_torch_names_the_extra(minilm_path, tmp_path):
    code = (f"from engine import Embedder\nfrom engine.errors import MissingExtraError\n"
            f"try:\n    Embedder({str(minilm_path)!r}, cache_dir={str(tmp_path)!r})\n"
            f"except MissingExtraError as err:\n    print(err)\nelse:\n    raise SystemExit('no error')\n")
    proc = torch_free("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'embedding-engine[export]'" in proc.stdout and "torch" in proc.stdout
    (tmp_path / "in.txt").write_text("one text\n")
    cli = torch_free("engine", "embed", str(tmp_path / "in.txt"), str(tmp_path / "o"), "--model", str(minilm_path),
                     "--cache-dir", str(tmp_path / "empty-cache"))
    assert cli.returncode == 1 and "embedding-engine[export]" in cli.stderr and "Traceback" not in cli.stderr


def test_warm_cache_starts_without_torch_and_without_hashing(tiny_models, tmp_path):
    """A model folder exported once is found again from file metadata alone: no torch import, no byte hashing."""
    import shutil

    folder = tmp_path / "tiny-bert"
    shutil.copytree(tiny_models["bert"], folder)
    cache = tmp_path / "cache"
    first = Embedder(folder, device="cpu", cache_dir=str(cache))  # exports into the cache (needs torch)
    code = (f"import export.source as s\n"
            f"s.hash_folder = lambda p: (_ for _ in ()).throw(AssertionError('hashed on a warm start'))\n"
            f"from engine import Embedder\n"
            f"e = Embedder({str(folder)!r}, device='cpu', cache_dir={str(cache)!r})\n"
            f"print(e.model_dir)\n")
    warm = torch_free("-c", code)
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout.strip() == str(first.model_dir)
    # An edited file changes the cheap key: the next start must look again (and, without torch, says what to install)
    (folder / "config.json").write_text((folder / "config.json").read_text() + "\n")
    cold = torch_free("-c", code)
    assert cold.returncode != 0 and "embedding-engine[export]" in cold.stderr
    # With torch, the content hash finds that nothing that matters changed... or re-exports when it did; either way
    # the export is valid and recorded for the next warm start.
    again = Embedder(folder, device="cpu", cache_dir=str(cache))
    np.testing.assert_allclose(again.encode(["a b c"]), first.encode(["a b c"]), atol=1e-6)
    assert torch_free("-c", code).returncode == 0


def test_package_imports_where_fcntl_does_not_exist():
    """On Windows there is no fcntl: every module must still import (file locks then use msvcrt)."""
    code = ("import importlib.abc, sys\n"
            "class NoFcntl(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'fcntl':\n"
            "            raise ModuleNotFoundError(\"No module named 'fcntl'\", name=name)\n"
            "sys.meta_path.insert(0, NoFcntl())\n"
            "sys.modules.pop('fcntl', None)\n"
            "import engine, engine.cli, engine.bulk.run, engine.inspect.run, engine.runtime.models, engine.filelock\n"
            "assert engine.filelock.fcntl is None\n"
            "print('ok')\n")
    proc = torch_free("-c", code)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
