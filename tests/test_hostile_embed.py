"""Issue 17, `engine embed` on hostile input: silent wrong results and raw tracebacks (items 4-6, 9-11, 18-20)."""
from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from embed_helpers import embeddings, read_output, short_texts, write_corpus

from engine.bulk import ledger as ledger_mod
from engine.cli import main


def run(*args):
    return CliRunner().invoke(main, ["embed", *[str(a) for a in args]], catch_exceptions=False)


@pytest.fixture(scope="module")
def texts(real_texts) -> list[str]:
    return short_texts(real_texts, 8, chars=80)


def test_item4_resume_after_a_same_size_edit_is_refused(tmp_path, minilm_export, monkeypatch, texts):
    src = write_corpus(tmp_path / "in.jsonl", "jsonl", texts)
    out = tmp_path / "out"
    args = [src, out, "--model", minilm_export, "--rows-per-part", 2]
    real_append = ledger_mod.Ledger.append

    def stop(self, record):
        real_append(self, record)
        if record.get("kind") == "part":
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(ledger_mod.Ledger, "append", stop)
        assert run(*args).exit_code == 1  # interrupted after the first part
    st = src.stat()
    write_corpus(src, "jsonl", [t[::-1] for t in texts])  # every text reversed: same byte length
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the old mtime put back
    assert src.stat().st_size == st.st_size
    r = run(*args)
    assert r.exit_code == 1 and "input" in r.output and "--overwrite" in r.output, r.output
    assert not (out / "_SUCCESS").exists()


def _jsonl_bytes(rows: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def test_item5_bad_utf8_in_another_field_does_not_touch_the_text(tmp_path, minilm_export, embedder, texts):
    lines = [json.dumps({"text": t, "note": "ok"}).encode() for t in texts[:4]]
    lines[1] = lines[1].replace(b'"ok"', b'"\xff\xfe"')  # invalid UTF-8 in 'note', which is not read
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    for policy in ("empty", "skip", "error"):
        out = tmp_path / f"out-{policy}"
        r = run(src, out, "--model", minilm_export, "--on-bad-row", policy)
        assert r.exit_code == 0, r.output
        np.testing.assert_allclose(embeddings(read_output(out)), embedder.encode(texts[:4]), atol=1e-5)
    # The same bytes in a kept column make the row bad, named with its column.
    r = run(src, tmp_path / "kept", "--model", minilm_export, "--keep-columns", "note")
    assert r.exit_code == 1 and "line 2" in r.output and "'note'" in r.output and "UTF-8" in r.output
    r = run(src, tmp_path / "kept-empty", "--model", minilm_export, "--keep-columns", "note", "--on-bad-row", "empty")
    assert r.exit_code == 0
    table = read_output(tmp_path / "kept-empty")
    assert table.column("note").to_pylist() == ["ok", None, "ok", "ok"]
    np.testing.assert_allclose(embeddings(table), embedder.encode(texts[:4]), atol=1e-5)


def test_item6_csv_ids_and_kept_columns_are_read_as_strings(tmp_path, minilm_export, texts):
    ids = ["001", "002", "7", "007", "12345678901234567890", "12345678901234567891"]
    zips = ["00123", "0", "1e3", "1.50", "TRUE", ""]
    src = write_corpus(tmp_path / "in.csv", "csv", texts[:6], ids=ids, extra={"zip": zips})
    r = run(src, tmp_path / "out", "--model", minilm_export, "--id-column", "id", "--keep-columns", "zip")
    assert r.exit_code == 0, r.output
    table = read_output(tmp_path / "out")
    got = dict(zip(table.column("id").to_pylist(), table.column("zip").to_pylist()))
    assert got == dict(zip(ids, zips))
    assert table.schema.field("id").type == pa.string() and table.schema.field("zip").type == pa.string()


def test_item11_chunking_needs_room_before_the_scan(tmp_path, minilm_export, texts):
    src = write_corpus(tmp_path / "in.jsonl", "jsonl", texts)
    for flags in (["--chunk-stride", 300], ["--chunk-stride", 254], ["--max-length", 2]):
        r = run(src, tmp_path / "out", "--model", minilm_export, "--long-text", "chunk", *flags)
        assert r.exit_code == 2, r.output
        assert "chunk" in r.output and "scanning" not in r.output


def test_item9_empty_input_with_id_and_kept_columns(tmp_path, minilm_export):
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string()),
                             "title": pa.array([], pa.string())}), src)
    for _ in range(2):  # the rerun answers 'already complete'
        r = run(src, tmp_path / "out", "--model", minilm_export, "--id-column", "id", "--keep-columns", "title")
        assert r.exit_code == 0, r.output
    table = read_output(tmp_path / "out")
    assert table.num_rows == 0 and table.column_names == ["id", "title", "embedding"]


def test_item10_big_integer_ids_then_float_ids_are_a_clear_error(tmp_path, minilm_export, texts):
    ids = [2**53 + 1, 2**53 + 3, 1.5, 2.5]
    src = tmp_path / "in.jsonl"
    src.write_bytes(_jsonl_bytes([{"id": i, "text": t} for i, t in zip(ids, texts)]))
    r = run(src, tmp_path / "out", "--model", minilm_export, "--id-column", "id", "--window-rows", 2)
    assert r.exit_code == 1 and "one type" in r.output and "line 3" in r.output, r.output


def test_item10_uint64_ids_above_2_63_are_kept_and_checked(tmp_path, minilm_export, texts):
    big = [2**63 + 5, 2**64 - 1, 2**63]
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": pa.array(big, pa.uint64()), "text": texts[:3]}), src)
    r = run(src, tmp_path / "out", "--model", minilm_export, "--id-column", "id")
    assert r.exit_code == 0, r.output
    assert sorted(read_output(tmp_path / "out").column("id").to_pylist()) == sorted(big)
    pq.write_table(pa.table({"id": pa.array(big + [2**64 - 1], pa.uint64()), "text": texts[:4]}), src)
    r = run(src, tmp_path / "dup", "--model", minilm_export, "--id-column", "id")
    assert r.exit_code == 1 and f"duplicate id {2**64 - 1}" in r.output


@pytest.mark.parametrize("kind", ["struct", "list", "nan"])
def test_item10_struct_list_and_nan_ids_are_refused(kind, tmp_path, minilm_export, texts):
    values = {"struct": pa.array([{"a": i} for i in range(3)]), "list": pa.array([[i] for i in range(3)]),
              "nan": pa.array([1.0, float("nan"), float("nan")])}[kind]
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": values, "text": texts[:3]}), src)
    r = run(src, tmp_path / "out", "--model", minilm_export, "--id-column", "id")
    assert r.exit_code == 1, r.output
    assert str(src) in r.output and ("row 1" in r.output if kind == "nan" else "ids must be integers or strings" in r.output)


def test_item18_a_later_jsonl_row_without_the_text_field_is_treated_like_the_first(tmp_path, minilm_export, texts):
    rows = [{"text": t} for t in texts[:4]]
    rows[2] = {"body": "no text field"}
    src = tmp_path / "in.jsonl"
    src.write_bytes(_jsonl_bytes(rows))
    first = tmp_path / "first.jsonl"
    first.write_bytes(_jsonl_bytes(rows[2:] + rows[:2]))
    for path, line in ((src, 3), (first, 1)):
        r = run(path, tmp_path / f"out-{line}", "--model", minilm_export, "--on-bad-row", "skip")
        assert r.exit_code == 2 and f"line {line}: no column 'text'" in r.output, r.output


def test_item19_huge_csv_fields_and_late_type_changes(tmp_path, minilm_export):
    big = tmp_path / "big.csv"
    big.write_text("text,blob\nfirst,small\nsecond," + "x" * (5 << 20) + "\nthird,small\n")
    r = run(big, tmp_path / "out-big", "--model", minilm_export)
    assert r.exit_code == 0, r.output
    assert read_output(tmp_path / "out-big").num_rows == 3
    late = tmp_path / "late.csv"
    rows = [f",{'p' * 100},{i}" for i in range(50_000)] + ["hello,pad,not a number"]
    late.write_text("text,pad,n\n" + "\n".join(rows) + "\n")  # > 4 MB before the type change
    r = run(late, tmp_path / "out-late", "--model", minilm_export, "--keep-columns", "n", "--on-bad-row", "skip")
    assert r.exit_code == 0, r.output
    assert read_output(tmp_path / "out-late").column("n").to_pylist() == ["not a number"]


def test_item20_bad_utf8_in_a_kept_csv_column(tmp_path, minilm_export):
    src = tmp_path / "in.csv"
    src.write_bytes(b"text,title\nfirst text,ok\nsecond text,\xff\xfe\nthird text,fine\n")
    r = run(src, tmp_path / "out", "--model", minilm_export, "--keep-columns", "title")
    assert r.exit_code == 1 and "record 2" in r.output and "'title'" in r.output, r.output
    r = run(src, tmp_path / "skip", "--model", minilm_export, "--keep-columns", "title", "--on-bad-row", "skip")
    assert r.exit_code == 0
    table = read_output(tmp_path / "skip")
    assert table.schema.field("title").type == pa.string() and table.column("title").to_pylist() == ["ok", "fine"]


def test_item20_dictionary_and_plain_kept_columns_are_unified(tmp_path, minilm_export, texts):
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pa.table({"text": texts[:2], "tag": pa.array(["a", "b"]).dictionary_encode()}), folder / "a.parquet")
    pq.write_table(pa.table({"text": texts[2:4], "tag": pa.array(["c", "d"])}), folder / "b.parquet",
                   use_dictionary=False)
    r = run(folder, tmp_path / "out", "--model", minilm_export, "--keep-columns", "tag")
    assert r.exit_code == 0, r.output
    assert read_output(tmp_path / "out").column("tag").to_pylist() == ["a", "b", "c", "d"]
