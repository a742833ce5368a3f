"""Hostile input, round 3, on the runtime's surface: `engine inspect` with text a terminal passes in any locale and a
stdout of any encoding (a subprocess with the environment set, as a user runs it), and Embedder.encode's arguments
checked by name."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CJK = "日本語の文章です"


def _inspect(model: Path, out: Path, *texts, env: dict | None = None) -> subprocess.CompletedProcess:
    """engine inspect TEXTS (str, or bytes as a terminal passes them) in a subprocess under env."""
    env = os.environ | {"PYTHONPATH": str(ROOT)} | (env or {})
    return subprocess.run([sys.executable, "-m", "engine", "inspect", *texts, "--model", str(model), "--out", str(out),
                           "--layers", "last", "--save-arrays"], cwd=ROOT, env=env, capture_output=True, timeout=300)


def _saved_text(out: Path, i: int = 0) -> str:
    return str(np.load(out / "arrays" / f"text{i}.npz")["text"])


def test_inspect_replaces_bytes_that_are_not_utf8_and_says_so(minilm_export, tmp_path):
    """(CR5) an argument holding invalid UTF-8 (Python passes it on as lone surrogates) is inspected with U+FFFD."""
    out = tmp_path / "out"
    proc = _inspect(minilm_export, out, b"caf\xe9 au lait", "a clean text")
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr and "TextEncodeInput" not in stderr
    assert "warning: TEXT 0 (text0 in the outputs) holds bytes that are not UTF-8; they were replaced by U+FFFD" in stderr
    assert "TEXT 1" not in stderr
    assert _saved_text(out, 0) == "caf\ufffd au lait" and _saved_text(out, 1) == "a clean text"


def test_inspect_reads_utf8_arguments_under_an_ascii_locale(minilm_export, tmp_path):
    """(CR5) under the C locale without UTF-8 mode, non-ASCII arguments arrive as surrogates: read back as UTF-8."""
    out = tmp_path / "out"
    text = f"naïve café {CJK}"
    env = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "PYTHONIOENCODING": ""}
    proc = _inspect(minilm_export, out, text, env=env)
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr and "warning: TEXT" not in stderr
    assert _saved_text(out) == text


def test_inspect_writes_tokens_a_latin1_stdout_cannot_encode_as_escapes(minilm_export, tmp_path):
    """(CR6) PYTHONIOENCODING=latin-1 and CJK text: the table is printed with backslash escapes, no traceback."""
    out = tmp_path / "out"
    proc = _inspect(minilm_export, out, CJK, env={"PYTHONIOENCODING": "latin-1"})
    stderr = proc.stderr.decode("latin-1")
    assert proc.returncode == 0, stderr[-3000:]
    assert "UnicodeEncodeError" not in stderr and "Traceback" not in stderr
    stdout = proc.stdout.decode("latin-1")
    assert "top-attended token per layer" in stdout
    assert "\\u65e5" in stdout or "\\u672c" in stdout, stdout  # 日 / 本 as escapes
    assert CJK[0] in (out / "top_attended.csv").read_text(encoding="utf-8")  # files stay UTF-8


def test_inspect_corpus_with_a_lone_surrogate_escape_names_the_line(minilm_export, tmp_path):
    """(CR5) a JSONL corpus can spell a lone surrogate ("\\ud800"): refused naming file and line, no traceback."""
    from click.testing import CliRunner

    from engine.cli import main

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"text": "fine"}\n{"text": "bad \\ud800 one"}\n')
    r = CliRunner().invoke(main, ["inspect", "--corpus", str(corpus), "--model", str(minilm_export),
                                  "--out", str(tmp_path / "out")])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert f"{corpus}:2: its 'text' holds a lone surrogate ('\\ud800' at character 4)" in r.output


@pytest.mark.parametrize("text", ["a\ud800b", "caf\udce9"])
def test_encode_refuses_a_lone_surrogate_naming_the_text(embedder, text):
    """(CR5) encode and inspect of a text with a lone surrogate: ValueError naming its index, not the tokenizer's."""
    at = 1 if text.startswith("a") else 3
    with pytest.raises(ValueError, match=rf"texts\[1\] holds a lone surrogate \('\\ud.{{3}}' at character {at}\)"):
        embedder.encode(["fine", text])
    with pytest.raises(ValueError, match=r"texts\[0\] holds a lone surrogate"):
        embedder.inspect([text])
    with pytest.raises(ValueError, match="prompt holds a lone surrogate"):
        embedder.encode(["fine"], prompt=text)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"batch_size": -1}, ValueError, "batch_size must be an integer >= 1, or None: .*; got -1"),
    ({"batch_size": 0}, ValueError, "batch_size must be an integer >= 1, or None: .*; got 0"),
    ({"batch_size": 2.5}, TypeError, "batch_size must be an integer >= 1, or None: .*; got float 2.5"),
    ({"batch_size": "8"}, TypeError, "batch_size must be an integer >= 1, or None: .*; got str '8'"),
    ({"batch_size": True}, TypeError, "batch_size must be .*; got bool True"),
    ({"truncate_dim": 2.5}, TypeError, r"truncate_dim must be in 1\.\.384 \(an integer, or None\): .*; got float 2.5"),
    ({"truncate_dim": "4"}, TypeError, r"truncate_dim must be in 1\.\.384 \(an integer, or None\): .*; got str '4'"),
    ({"truncate_dim": True}, TypeError, "truncate_dim must be .*; got bool True"),
    ({"truncate_dim": 385}, ValueError, r"truncate_dim must be in 1\.\.384 \(an integer, or None\): .*; got 385"),
    ({"prompt": 5}, TypeError, "prompt must be a string or None, got int 5"),
    ({"prompt_name": 5}, TypeError, "prompt_name must be a string or None, got int 5"),
    ({"chunk_size": 10}, ValueError, "chunk_size=10 sizes the chunks of a multi-process pool"),
    ({"normalize_embeddings": "no"}, TypeError, "normalize_embeddings must be True or False, got str 'no'"),
    ({"show_progress_bar": "yes"}, TypeError, "show_progress_bar must be True or False, got str 'yes'"),
    ({"convert_to_tensor": None}, TypeError, "convert_to_tensor must be True or False, got NoneType None"),
])
def test_encode_arguments_are_checked_by_name(embedder, kwargs, error, message):
    """(UE5) each bad encode argument is refused with its name, its value and what it accepts."""
    with pytest.raises(error, match=message):
        embedder.encode(["a text", "another text"] * 20, **kwargs)


def test_encode_chunks_checks_batch_size(embedder):
    """(UE5) encode_chunks takes batch_size too: checked the same way."""
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, or None"):
        embedder.encode_chunks(["a text"], batch_size=-1)


def test_valid_encode_arguments_still_work(embedder):
    """(UE5) the accepted forms: numpy ints, numpy bools, None."""
    texts = ["a text", "another text", "a third one"]
    want = embedder.encode(texts)
    got = embedder.encode(texts, batch_size=np.int64(2), truncate_dim=np.int32(384), normalize_embeddings=np.bool_(False),
                          show_progress_bar=None, prompt="", prompt_name=None, chunk_size=None)
    assert np.allclose(got, want, atol=1e-6)
    assert embedder.encode(texts, truncate_dim=1).shape == (3, 1)
