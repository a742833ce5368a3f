"""The openvino backend and the backend option: OpenVINO f32 equals onnxruntime fp32 (any x86 CPU), bf16 exports pass
their gate where the CPU has bf16 units (skipped exactly where it has none) and are refused elsewhere, and 'auto'
picks, says and records what it should."""
from __future__ import annotations

import json
import shutil

import httpx
import numpy as np
import pytest

from conftest import HARDWARE_BF16
from embed_helpers import run, short_texts, write_corpus
from engine import Embedder
from engine.config import EmbedderConfig
from engine.errors import ConfigError, MissingExtraError
from engine.runtime.backends.choice import choose_backend, first_use_precision
from export.cpu import FLAGS_ENV, bf16_refusal, cpu_flags
from serve_helpers import Server

pytest.importorskip("openvino")

AMX = frozenset({"avx2", "avx512f", "amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni"})
AVX2 = frozenset({"avx2", "fma"})
needs_bf16 = pytest.mark.skipif(not HARDWARE_BF16, reason="this CPU has no bf16 units (amx_bf16, avx512_bf16)")


@pytest.fixture(scope="module")
def minilm_openvino(minilm_export):
    return Embedder(minilm_export, device="cpu", backend="openvino")


@pytest.fixture
def hardware_flags(monkeypatch):
    """The CPU as it is (conftest masks its bf16 units for the rest of the suite)."""
    monkeypatch.delenv(FLAGS_ENV)
    return cpu_flags()


@pytest.fixture(scope="module")
def minilm_bf16(minilm_path, tmp_path_factory):
    """all-MiniLM-L6-v2 exported bf16 here (validated with OpenVINO bf16), where the CPU has bf16 units."""
    from export import ExportOptions, export_model

    if not HARDWARE_BF16:
        pytest.skip("this CPU has no bf16 units")
    out = tmp_path_factory.mktemp("bf16") / "minilm-bf16"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(FLAGS_ENV)
        export_model(ExportOptions(model=str(minilm_path), out_dir=str(out), precision="bf16"), log=lambda _m: None)
    return out


def fake_bf16_export(src, dst):
    """An export whose manifest says bf16 (the graph is the fp32 one, as a real bf16 export's is): the runtime's
    refusals without bf16 hardware."""
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    (dst / "manifest.json").write_text(json.dumps(manifest | {"precision": "bf16"}))
    return dst


def test_openvino_f32_equals_onnxruntime_on_padded_real_batches(minilm_openvino, embedder, real_texts):
    texts = real_texts[:64]
    ov, ort = minilm_openvino.encode(texts), embedder.encode(texts)
    assert minilm_openvino.backend_choice.name == "openvino" and minilm_openvino.providers == ["OpenVINO CPU f32"]
    assert np.abs(ov - ort).max() <= 1e-5
    minilm_openvino.reset_stats()
    minilm_openvino.encode(texts)
    assert minilm_openvino.stats.padded_tokens > minilm_openvino.stats.real_tokens  # the batches did pad
    tokens_ov = minilm_openvino.encode(texts[:8], output_value="token_embeddings")
    tokens_ort = embedder.encode(texts[:8], output_value="token_embeddings")
    assert max(np.abs(a - b).max() for a, b in zip(tokens_ov, tokens_ort)) <= 1e-5


def test_openvino_order_padding_and_single_invariances(minilm_openvino, real_texts):
    long_texts = sorted(real_texts, key=len)[-12:]
    short = "Then I tried to find some way of embracing my mother's ghost."
    alone = minilm_openvino.encode([short])[0]
    batched = minilm_openvino.encode(long_texts[:6] + [short] + long_texts[6:], batch_size=13)[6]
    assert np.abs(alone - batched).max() <= 1e-5  # padding to the longest text changes nothing
    texts = real_texts[:40]
    perm = np.random.default_rng(0).permutation(len(texts))
    base = minilm_openvino.encode(texts)
    assert np.abs(minilm_openvino.encode([texts[i] for i in perm]) - base[perm]).max() <= 1e-5
    singles = np.stack([minilm_openvino.encode(t) for t in texts[:8]])
    assert np.abs(singles - base[:8]).max() <= 1e-5


@pytest.mark.parametrize("arch", ["bert", "roberta", "distilbert"])
def test_openvino_f32_equals_onnxruntime_on_tiny_architectures(arch, tiny_exports, tokenizer_texts):
    texts = tokenizer_texts[:20]
    ov = Embedder(tiny_exports[arch], device="cpu", backend="openvino").encode(texts)
    ort = Embedder(tiny_exports[arch], device="cpu", backend="onnxruntime").encode(texts)
    assert np.abs(ov - ort).max() <= 1e-5


def test_auto_picks_by_precision_flags_and_package():
    auto = choose_backend("auto", "cpu", "bf16", flags=AMX, installed=True)
    assert (auto.name, auto.precision) == ("openvino", "bf16") and "amx_bf16" in auto.reason
    for flags in (AMX, AVX2):  # fp32, int8 exports stay on onnxruntime (what their gates measured)
        for precision in ("fp32", "int8", "fp16"):
            assert choose_backend("auto", "cpu", precision, flags=flags, installed=True).name == "onnxruntime"
    assert "no bf16 units" in choose_backend("auto", "cpu", "fp32", flags=AVX2, installed=True).reason
    assert "not installed" in choose_backend("auto", "cpu", "fp32", flags=AMX, installed=False).reason
    # First-use exports: bf16 only where the openvino backend may run it.
    assert first_use_precision(EmbedderConfig(device="cpu"), flags=AMX, installed=True) == "bf16"
    assert first_use_precision(EmbedderConfig(device="cpu"), flags=AVX2, installed=True) == "fp32"
    assert first_use_precision(EmbedderConfig(device="cpu"), flags=AMX, installed=False) == "fp32"
    assert first_use_precision(EmbedderConfig(device="cpu", backend="onnxruntime"), flags=AMX, installed=True) == "fp32"
    assert first_use_precision(EmbedderConfig(device="cuda"), flags=AMX, installed=True) == "fp32"
    assert first_use_precision(EmbedderConfig(device="cpu", precision="int8"), flags=AMX, installed=True) == "int8"


def test_refusals():
    with pytest.raises(MissingExtraError, match=r"pip install 'embedding-engine\[openvino\]'"):
        choose_backend("openvino", "cpu", "fp32", flags=AMX, installed=False)
    with pytest.raises(ConfigError, match="not on CUDA"):
        choose_backend("openvino", "cuda", "fp32", flags=AMX, installed=True)
    with pytest.raises(ConfigError, match="runs only on the openvino backend"):
        choose_backend("onnxruntime", "cpu", "bf16", flags=AMX, installed=True)
    with pytest.raises(ConfigError, match="needs a CPU with bf16 units"):
        choose_backend("auto", "cpu", "bf16", flags=AVX2, installed=True)
    with pytest.raises(ConfigError, match="validated with onnxruntime"):
        choose_backend("openvino", "cpu", "int8", flags=AMX, installed=True)
    with pytest.raises(ConfigError, match="backend 'tensorrt' is not one of"):
        EmbedderConfig(backend="tensorrt")
    assert bf16_refusal(AMX) is None and "never emulated" in bf16_refusal(AVX2)


def test_bf16_export_refused_without_units(minilm_path, tmp_path, monkeypatch):
    from export import ExportOptions, OptionError, export_model

    monkeypatch.setenv(FLAGS_ENV, "avx2 fma avx512f")
    with pytest.raises(OptionError, match="needs a CPU with bf16 units"):
        export_model(ExportOptions(model=str(minilm_path), out_dir=str(tmp_path / "x"), precision="bf16"))
    assert not (tmp_path / "x").exists()
    r = run_export_cli(minilm_path, tmp_path / "y")
    assert r.exit_code == 2 and "bf16 units" in r.output, r.output


def run_export_cli(model, out):
    from click.testing import CliRunner

    from engine.cli import main

    return CliRunner().invoke(main, ["export", str(model), str(out), "--precision", "bf16"])


def test_bf16_export_refused_at_runtime_without_units_or_on_onnxruntime(tiny_exports, tmp_path, monkeypatch):
    folder = fake_bf16_export(tiny_exports["bert"], tmp_path / "bf16")
    monkeypatch.setenv(FLAGS_ENV, "avx2 fma")
    with pytest.raises(ConfigError, match="bf16 is never emulated"):
        Embedder(folder, device="cpu")
    with pytest.raises(ConfigError, match="runs only on the openvino backend"):
        Embedder(folder, device="cpu", backend="onnxruntime")


@needs_bf16
def test_bf16_export_passes_its_gate_here(minilm_bf16, embedder, real_texts, hardware_flags):
    manifest = json.loads((minilm_bf16 / "manifest.json").read_text())
    report = manifest["parity"]["embed"]
    assert manifest["valid"] and manifest["precision"] == "bf16" and report["provider"] == "OpenVINO CPU bf16"
    pooled = report["outputs"]["sentence_embedding"]
    assert pooled["mean_cos"] >= 0.9999 and pooled["min_cos"] >= 0.999 and pooled["neighbour_overlap"] >= 0.99
    assert report["thresholds"]["mean_cos"] == 0.9999 and report["thresholds"]["min_overlap"] == 0.99
    emb = Embedder(minilm_bf16)  # auto: OpenVINO bf16
    assert emb.backend_choice.label == "openvino bf16" and emb.providers == ["OpenVINO CPU bf16"]
    got, want = emb.encode(real_texts[:64]), embedder.encode(real_texts[:64])
    assert (got * want).sum(1).min() >= 0.999


@needs_bf16
def test_auto_reaches_the_summary_and_the_job_record(minilm_bf16, minilm_export, real_texts, tmp_path, hardware_flags):
    src = write_corpus(tmp_path / "in.jsonl", "jsonl", short_texts(real_texts, 30))
    r = run([src, tmp_path / "out", "--model", minilm_bf16])
    assert r.exit_code == 0, r.output
    assert "backend openvino bf16 (bf16 export, validated with OpenVINO bf16" in r.stdout
    success = json.loads((tmp_path / "out" / "_SUCCESS").read_text())
    assert success["backend"]["backend"] == "openvino" and success["identity"]["backend"] == "openvino bf16"


def test_resume_on_another_backend_is_refused(minilm_export, real_texts, tmp_path, monkeypatch):
    src = write_corpus(tmp_path / "in.jsonl", "jsonl", short_texts(real_texts, 30))
    out = tmp_path / "out"
    r = run([src, out, "--model", minilm_export, "--rows-per-part", 10])
    assert r.exit_code == 0 and "backend onnxruntime fp32" in r.stdout, r.output
    (out / "_SUCCESS").unlink()  # an unfinished output, resumed on OpenVINO: refused, not mixed
    r = run([src, out, "--model", minilm_export, "--rows-per-part", 10, "--backend", "openvino"])
    assert r.exit_code != 0 and 'backend: null -> "openvino fp32"' in r.output and "--overwrite" in r.output, r.output


def test_info_says_which_backend_and_why(tiny_exports, tmp_path):
    server = Server(tmp_path / "serve.log", "--model", str(tiny_exports["bert"]), "--backend", "openvino")
    try:
        info = httpx.get(server.url + "/info", timeout=30).json()
        vec = httpx.post(server.url + "/embed", json={"inputs": ["hello"]}, timeout=30).json()
    finally:
        server.stop()
    assert (info["backend"], info["backend_precision"], info["backend_reason"]) == \
        ("openvino", "fp32", "asked for (backend openvino)")
    assert len(vec[0]) == 32 and "backend openvino fp32" in server.log


@needs_bf16
def test_first_use_export_is_bf16_here_and_fp32_when_bf16_misses_its_gate(tiny_models, tmp_path, monkeypatch, capfd,
                                                                           hardware_flags):
    from export import validate

    # The tiny random model's own bf16 numbers are not the point here (all-MiniLM's gate is, above): the thresholds
    # are set so that bf16 passes, then so that it cannot.
    monkeypatch.setitem(validate._DEFAULTS, "bf16", (None, None, 0.9, 0.9, 0.5))
    emb = Embedder(tiny_models["bert"], cache_dir=str(tmp_path / "a"))
    assert emb.manifest["precision"] == "bf16" and emb.backend_choice.label == "openvino bf16"
    monkeypatch.setitem(validate._DEFAULTS, "bf16", (None, None, 1.1, 1.1, 1.1))
    capfd.readouterr()
    emb = Embedder(tiny_models["bert"], cache_dir=str(tmp_path / "b"))
    assert emb.manifest["precision"] == "fp32" and emb.backend_choice.name == "onnxruntime"
    assert "missed its parity gate" in capfd.readouterr().err
    again = Embedder(tiny_models["bert"], cache_dir=str(tmp_path / "b"))  # remembered: no second bf16 attempt
    assert again.manifest["precision"] == "fp32" and "exporting" not in capfd.readouterr().err


def test_compiled_models_are_cached_per_graph_content(tiny_exports, tmp_path):
    emb = Embedder(tiny_exports["bert"], device="cpu", backend="openvino", cache_dir=str(tmp_path))
    digest = emb.manifest["files"]["embed.onnx"][:16]
    assert [p.suffix for p in (tmp_path / "openvino" / digest).iterdir()] == [".blob"]  # OpenVINO's compiled model
    again = Embedder(tiny_exports["bert"], device="cpu", backend="openvino", cache_dir=str(tmp_path))
    assert np.array_equal(again.encode(["cached"]), emb.encode(["cached"]))
