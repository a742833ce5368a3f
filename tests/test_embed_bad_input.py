"""engine embed on bad input: missing columns, bad rows under each policy, invalid UTF-8, corrupt files, duplicate ids."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from embed_helpers import embeddings, read_output, run, short_texts, write_corpus

from engine import Embedder
from engine.bulk import idcheck


@pytest.fixture(scope="module")
def texts(real_texts) -> list[str]:
    return short_texts(real_texts, 8, chars=80)


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv", "txt"])
def test_missing_column_lists_the_available_ones(fmt, tmp_path, minilm_export, texts):
    src = write_corpus(tmp_path / f"in.{fmt}", fmt, texts, extra=None if fmt == "txt" else {"body": texts})
    r = run([src, tmp_path / "out", "--model", minilm_export, "--text-column", "content"])
    assert r.exit_code == 2, r.output
    assert "no column 'content'" in r.output and str(src) in r.output
    assert ("available columns: text, body" if fmt != "txt" else "available columns: text") in r.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("part-*"))
    if fmt != "txt":
        r = run([src, tmp_path / "out2", "--model", minilm_export, "--keep-columns", "body,nope"])
        assert r.exit_code == 2 and "no column 'nope' (--keep-columns)" in r.output
        r = run([src, tmp_path / "out3", "--model", minilm_export, "--id-column", "key"])
        assert r.exit_code == 2 and "no column 'key' (--id-column)" in r.output


def _bad_jsonl(tmp_path, texts):
    """Rows 2, 4 and 5 are bad: null, empty, non-string."""
    rows = [{"id": f"r{i}", "text": t} for i, t in enumerate(texts)]
    rows[2]["text"], rows[4]["text"], rows[5]["text"] = None, "", 42
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_bad_rows_error_by_default_naming_row_id_and_file(tmp_path, minilm_export, texts):
    src = _bad_jsonl(tmp_path, texts)
    r = run([src, tmp_path / "out", "--model", minilm_export, "--id-column", "id"])
    assert r.exit_code == 1
    assert str(src) in r.output and "line 3" in r.output and "'r2'" in r.output and "null text" in r.output
    assert "--on-bad-row" in r.output
    assert not any((tmp_path / "out").glob("part-*"))  # the scan stops before any embedding


def test_bad_rows_skip(tmp_path, minilm_export, texts):
    src = _bad_jsonl(tmp_path, texts)
    r = run([src, tmp_path / "out", "--model", minilm_export, "--id-column", "id", "--on-bad-row", "skip"])
    assert r.exit_code == 0, r.output
    assert "skipped rows 3" in r.stdout
    table = read_output(tmp_path / "out")
    keep = [0, 1, 3, 6, 7]
    assert table.column("id").to_pylist() == [f"r{i}" for i in keep]
    want = Embedder(minilm_export, device="cpu").encode([texts[i] for i in keep])
    np.testing.assert_allclose(embeddings(table), want, atol=1e-5)
    assert json.loads((tmp_path / "out" / "_SUCCESS").read_text())["rows"]["skipped"] == 3


def test_bad_rows_empty(tmp_path, minilm_export, texts):
    src = _bad_jsonl(tmp_path, texts)
    r = run([src, tmp_path / "out", "--model", minilm_export, "--id-column", "id", "--on-bad-row", "empty"])
    assert r.exit_code == 0, r.output
    assert "emptied rows 3" in r.stdout
    table = read_output(tmp_path / "out")
    assert table.num_rows == 8
    want = Embedder(minilm_export, device="cpu").encode(["" if i in (2, 4, 5) else t for i, t in enumerate(texts)])
    np.testing.assert_allclose(embeddings(table), want, atol=1e-5)


@pytest.mark.parametrize("fmt", ["txt", "jsonl", "csv"])
def test_invalid_utf8_follows_the_policy(fmt, tmp_path, minilm_export, texts):
    lines = [t.encode() for t in texts]
    lines[3] = b"caf\xe9 au lait"  # latin-1, not UTF-8
    if fmt == "txt":
        data = b"".join(x + b"\n" for x in lines)
    elif fmt == "jsonl":
        data = b"".join(b'{"text": "' + x.replace(b'"', b'\\"') + b'"}\n' for x in lines)
    else:
        data = b"text\n" + b"".join(b'"' + x.replace(b'"', b'""') + b'"\n' for x in lines)
    src = tmp_path / f"in.{fmt}"
    src.write_bytes(data)
    r = run([src, tmp_path / "err", "--model", minilm_export])
    assert r.exit_code == 1 and "invalid UTF-8" in r.output and str(src) in r.output and "(id 3)" in r.output
    r = run([src, tmp_path / "skip", "--model", minilm_export, "--on-bad-row", "skip"])
    assert r.exit_code == 0 and read_output(tmp_path / "skip").column("id").to_pylist() == [0, 1, 2, 4, 5, 6, 7]
    r = run([src, tmp_path / "empty", "--model", minilm_export, "--on-bad-row", "empty"])
    assert r.exit_code == 0 and read_output(tmp_path / "empty").num_rows == 8


def test_lone_surrogate_from_a_json_escape_is_a_bad_row(tmp_path, minilm_export, texts):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "ok"}\n{"text": "bad \\ud800 half"}\n')
    r = run([src, tmp_path / "out", "--model", minilm_export])
    assert r.exit_code == 1 and "lone surrogate" in r.output and "line 2" in r.output


@pytest.mark.parametrize("kind", ["parquet", "gzip", "json", "csv"])
def test_corrupt_file_names_the_file(kind, tmp_path, minilm_export, texts):
    if kind == "parquet":
        src = write_corpus(tmp_path / "in.parquet", "parquet", texts * 50)
        src.write_bytes(src.read_bytes()[: src.stat().st_size // 2])  # cut short: no footer
    elif kind == "gzip":
        src = tmp_path / "in.jsonl.gz"
        src.write_bytes(gzip.compress(b"".join(json.dumps({"text": t}).encode() + b"\n" for t in texts))[:-30])
    elif kind == "json":
        src = tmp_path / "in.jsonl"
        src.write_text(json.dumps({"text": "fine"}) + "\n{\"text\": \"cut off\n")
    else:
        src = tmp_path / "in.csv"
        src.write_text('text,n\n"a",1\n"b",2,3\n')
    r = run([src, tmp_path / "out", "--model", minilm_export])
    assert r.exit_code == 1, r.output
    assert str(src) in r.output
    assert "Traceback" not in r.output


def test_unsupported_and_empty_inputs(tmp_path, minilm_export):
    (tmp_path / "a.xlsx").write_text("x")
    r = run([tmp_path / "a.xlsx", tmp_path / "out", "--model", minilm_export])
    assert r.exit_code == 1 and "unsupported file type" in r.output
    (tmp_path / "empty").mkdir()
    r = run([tmp_path / "empty", tmp_path / "out", "--model", minilm_export])
    assert r.exit_code == 1 and "holds no" in r.output
    # An empty file is a valid, empty corpus: one empty part carries the schema.
    (tmp_path / "e.txt").write_text("")
    r = run([tmp_path / "e.txt", tmp_path / "out2", "--model", minilm_export])
    assert r.exit_code == 0, r.output
    table = read_output(tmp_path / "out2")
    assert table.num_rows == 0 and table.schema.field("embedding").type.list_size == 384


def test_duplicate_ids_are_refused_unless_allowed(tmp_path, minilm_export, texts):
    src = tmp_path / "in"
    write_corpus(src / "a.jsonl", "jsonl", texts[:4], ids=["a", "b", "c", "d"])
    write_corpus(src / "b.csv", "csv", texts[4:], ids=["e", "b", "f", "g"])
    r = run([src, tmp_path / "out", "--model", minilm_export, "--id-column", "id"])
    assert r.exit_code == 1, r.output
    assert "duplicate id 'b'" in r.output and "a.jsonl line 2" in r.output and "b.csv record 2" in r.output
    assert "--allow-duplicate-ids" in r.output
    r = run([src, tmp_path / "out", "--model", minilm_export, "--id-column", "id", "--allow-duplicate-ids"])
    assert r.exit_code == 0, r.output
    assert read_output(tmp_path / "out").num_rows == 8


def test_duplicate_check_spills_and_ignores_hash_collisions(tmp_path, monkeypatch, minilm_export, texts):
    """Tiny runs force spills and buckets; a constant key makes every id a candidate, yet only real duplicates fail."""
    monkeypatch.setattr(idcheck, "RUN_KEYS", 3)
    spill = idcheck.KeySpill(tmp_path)
    keys = idcheck.id_keys(__import__("pyarrow").array(list(range(40)) + [7, 39]))
    for i in range(0, len(keys), 5):
        spill.add(keys[i:i + 5])
    found = spill.duplicates()
    spill.close()
    assert sorted(found.tolist()) == sorted(idcheck.id_keys(__import__("pyarrow").array([7, 39])).tolist())
    monkeypatch.setattr("engine.bulk.scan.id_keys", lambda ids: np.zeros(len(ids), dtype=np.uint64))
    src = write_corpus(tmp_path / "in.jsonl", "jsonl", texts, ids=[f"u{i}" for i in range(8)])
    r = run([src, tmp_path / "out", "--model", minilm_export, "--id-column", "id"])
    assert r.exit_code == 0, r.output  # every key collides; no id repeats


def test_null_id_is_an_error(tmp_path, minilm_export, texts):
    src = write_corpus(tmp_path / "in.parquet", "parquet", texts, ids=[1, 2, None, 4, 5, 6, 7, 8])
    r = run([src, tmp_path / "out", "--model", minilm_export, "--id-column", "id"])
    assert r.exit_code == 1 and "id" in r.output and "null" in r.output and "row 2" in r.output


def test_mixed_column_types_across_files_are_reconciled_or_refused(tmp_path, minilm_export, texts):
    src = tmp_path / "in"
    write_corpus(src / "a.jsonl", "jsonl", texts[:4], extra={"score": [1, 2, 3, 4]})
    write_corpus(src / "b.jsonl", "jsonl", texts[4:], extra={"score": [0.5, None, 2.5, 3.5]})
    r = run([src, tmp_path / "out", "--model", minilm_export, "--keep-columns", "score"])
    assert r.exit_code == 0, r.output
    assert read_output(tmp_path / "out").column("score").to_pylist() == [1, 2, 3, 4, 0.5, None, 2.5, 3.5]
    write_corpus(src / "c.jsonl", "jsonl", texts[:2], extra={"score": [{"a": 1}, {"a": 2}]})
    r = run([src, tmp_path / "out2", "--model", minilm_export, "--keep-columns", "score"])
    assert r.exit_code == 1 and "c.jsonl" in r.output
