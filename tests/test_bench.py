"""The benchmark suite runs end to end in --quick mode and writes a well-formed report (no timing asserts)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _finite_numbers(value, where="record"):
    """Every number in a record is finite (the suite writes None, never NaN or inf)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _finite_numbers(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _finite_numbers(v, f"{where}[{i}]")
    elif isinstance(value, float):
        assert math.isfinite(value), f"{where} is {value}"


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory, minilm_export, minilm_export_int8):
    """python -m benchmarks --quick into a temp folder, reusing the session's exports (no export inside the run)."""
    out = tmp_path_factory.mktemp("bench")
    cmd = [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out), "--cache-dir", str(out / "cache"),
           "--export", f"minilm-fp32={minilm_export}", "--export", f"minilm-int8={minilm_export_int8}"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return out, records, proc


def test_quick_writes_report_and_results(quick_report):
    out, records, proc = quick_report
    assert (out / "report.md").is_file()
    assert proc.stdout.strip().endswith("report.md")
    types = {r["type"] for r in records}
    assert {"meta", "gemm", "corpus", "run", "speed", "parity", "retrieval", "scaling", "end"} <= types
    for r in records:
        _finite_numbers(r)


def test_speed_records_are_complete(quick_report):
    _, records, _ = quick_report
    speed = [r for r in records if r["type"] == "speed"]
    systems = {r["system"] for r in speed if r["section"] == "speed"}
    assert {"engine fp32", "engine int8", "hf sdpa sorted", "sentence-transformers"} <= systems  # --quick's lineup
    for r in speed:
        assert r["repeats"] >= 1 and r["texts"] > 0 and r["real_tokens"] > 0
        assert r["padded_tokens"] >= r["real_tokens"]
        assert 0 <= r["pad_overhead"] < 1
        for key in ("tokens_per_s", "texts_per_s"):
            s = r[key]
            assert 0 < s["min"] <= s["median"] <= s["max"]
        assert r["rss_peak_mb"] > 0
        if r["kind"] == "engine":  # time outside onnxruntime's run, per batch
            assert 0 < r["outside_session_share"] < 1 and r["outside_session_ms_per_batch"] > 0 and r["batches"] >= 1
    sections = {r["section"] for r in speed}
    assert {"speed", "length", "budget"} <= sections


def test_parity_and_retrieval_records(quick_report):
    _, records, _ = quick_report
    parity = [r for r in records if r["type"] == "parity"]
    layers = {(r["output"], r["layer"]) for r in parity if r["output"] != "sentence_embedding"}
    # all-MiniLM-L6-v2: 6 layers -> 7 hidden states and 6 attention maps
    assert {("hidden_states", i) for i in range(7)} | {("attentions", i) for i in range(6)} == layers
    pooled = {r["precision"]: r for r in parity if r["output"] == "sentence_embedding"}
    assert set(pooled) == {"fp32", "int8"}
    for r in parity:
        assert -1.0 <= r["cos_min"] <= r["cos_mean"] <= 1.0 + 1e-9
        assert r["max_abs"] >= 0
    for r in (r for r in records if r["type"] == "retrieval"):
        assert r["k"] == 10 and 0 <= r["overlap_min"] <= r["overlap_mean"] <= 1


def test_report_has_sections_and_plots(quick_report):
    out, records, _ = quick_report
    text = (out / "report.md").read_text()
    for heading in ("# Benchmark report", "## Headline", "## Choosing a precision", "## What the numbers mean", "## Machine", "## Corpora",
                    "## Speed: all-MiniLM-L6-v2, mixed corpus", "## Speed by text length", "## Engine speed by batch token budget",
                    "## Parity against PyTorch fp32", "## Retrieval: top-10 nearest neighbours", "## Scaling"):
        assert heading in text, heading
    assert "nan" not in text.lower().split()
    for png in ("speed.png", "length.png", "budget.png", "scaling.png"):
        assert (out / png).stat().st_size > 1000
        assert f"]({png})" in text
    # the report can be rebuilt from results.jsonl alone
    subprocess.run([sys.executable, "-m", "benchmarks", "--report-only", "--out", str(out)], cwd=REPO, check=True,
                   capture_output=True, timeout=120)
    assert (out / "report.md").read_text().startswith("# Benchmark report")


def test_cli_options_are_checked():
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "nope"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown section" in proc.stderr


def test_flops_and_corpus_helpers():
    from benchmarks.corpus import LONG_MIN, SHORT_MAX, long_texts, short_texts, token_lengths
    from benchmarks.gemm import flops_per_token

    minilm = {"hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 6}
    # the "~22 MFLOP per token" for all-MiniLM-L6-v2 at a typical length
    assert 21e6 < flops_per_token(minilm, 64) < 23e6
    assert token_lengths(short_texts(50)).max() <= SHORT_MAX
    long = long_texts(10)
    assert token_lengths(long).min() >= LONG_MIN and len(set(long)) == len(long)


def test_engine_bench_command_parses_the_same_options():
    from click.testing import CliRunner

    from engine.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["bench", "--help"])
    assert result.exit_code == 0
    for flag in ("--quick", "--device", "--only", "--repeats", "--out", "--export", "--report-only"):
        assert flag in result.output
    bad = runner.invoke(main, ["bench", "--only", "nope"])
    assert bad.exit_code == 2 and "unknown section" in bad.output


def test_rerank_serve_quick(tiny_rerankers, tmp_path):
    """python -m benchmarks.rerank_serve --quick on a tiny reranker: both sides of the A/B run, every served score
    equal to the offline one, a report with the ratio and the load average (no timing asserts)."""
    cmd = [sys.executable, "-m", "benchmarks.rerank_serve", "--quick", "--model", str(tiny_rerankers["bert"]),
           "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads((tmp_path / "rerank-serve.json").read_text())
    assert result["summary"]["errors"] == 0 and result["meta"]["server_exit"] == 0
    assert {r["system"].split(",")[0] for r in result["rounds"]} == {"offline Reranker.predict", "engine serve"}
    assert result["summary"]["offline_pairs_per_s"] > 0 and result["summary"]["served_pairs_per_s"] > 0
    _finite_numbers(result)
    text = (tmp_path / "rerank-serve.md").read_text()
    assert "served / offline" in text and "load average" in text and result["meta"]["load_average_end"] in text
