"""engine embed: every input format, every flag, the output schema and metadata, readers besides pyarrow."""
from __future__ import annotations

import gzip
import io
import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from embed_helpers import embeddings, read_output, run, short_texts, write_corpus

from engine import Embedder
from engine.bulk.progress import Progress, Summary
from export import read_manifest
from export.manifest import manifest_hash

N = 24


@pytest.fixture(scope="module")
def texts(real_texts) -> list[str]:
    return short_texts(real_texts, N)


@pytest.fixture(scope="module")
def reference(embedder, texts) -> np.ndarray:
    """Embedder.encode on the same texts: what every format must reproduce."""
    return embedder.encode(texts)


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "jsonl.gz", "csv", "txt"])
def test_every_format_matches_the_embedder(fmt, tmp_path, minilm_export, texts, reference):
    src = write_corpus(tmp_path / f"in.{fmt}", fmt, texts)
    out = tmp_path / "out"
    r = run([src, out, "--model", minilm_export, "--rows-per-part", 10, "--window-rows", 7])
    assert r.exit_code == 0, r.output
    table = read_output(out)
    assert table.column("id").to_pylist() == list(range(N))  # default id: the row number
    assert table.column_names == ["id", "embedding"]  # the text column is dropped
    np.testing.assert_allclose(embeddings(table), reference, atol=1e-5)
    assert sorted(p.name for p in out.glob("part-*.parquet")) == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert f"embedded {N} rows" in r.stdout


@pytest.mark.parametrize("layout", ["folder", "glob"])
def test_folder_and_glob_number_rows_across_files(layout, tmp_path, minilm_export, texts, reference):
    src = tmp_path / "in"
    # Sorted by path: a.parquet, b.jsonl, c/d.csv; a _SUCCESS and a hidden file are not inputs.
    write_corpus(src / "a.parquet", "parquet", texts[:10])
    write_corpus(src / "b.jsonl", "jsonl", texts[10:17])
    write_corpus(src / "c" / "d.csv", "csv", texts[17:])
    (src / "_SUCCESS").write_text("{}")
    (src / ".hidden.jsonl").write_text("not json\n")
    spec = src if layout == "folder" else f"{src}/**/*.*"
    r = run([spec, tmp_path / "out", "--model", minilm_export])
    assert r.exit_code == 0, r.output
    table = read_output(tmp_path / "out")
    assert table.column("id").to_pylist() == list(range(N))
    np.testing.assert_allclose(embeddings(table), reference, atol=1e-5)


def test_id_and_keep_columns(tmp_path, minilm_export, texts, reference):
    ids = [f"doc-{i:03d}" for i in range(N)]
    src = write_corpus(tmp_path / "in.jsonl", "jsonl", texts, ids=ids,
                       extra={"title": [f"t{i}" for i in range(N)], "n": list(range(N)), "dropped": [1.5] * N})
    r = run([src, tmp_path / "out", "--model", minilm_export, "--id-column", "id", "--keep-columns", "title,n",
             "--rows-per-part", 5])
    assert r.exit_code == 0, r.output
    table = read_output(tmp_path / "out")
    assert table.column_names == ["id", "title", "n", "embedding"]
    assert table.column("id").to_pylist() == ids
    assert table.column("title").to_pylist() == [f"t{i}" for i in range(N)]
    assert table.column("n").type == pa.int64()
    np.testing.assert_allclose(embeddings(table), reference, atol=1e-5)


def test_schema_metadata_and_success_manifest(tmp_path, minilm_export, texts):
    src = write_corpus(tmp_path / "in.parquet", "parquet", texts)
    out = tmp_path / "out"
    assert run([src, out, "--model", minilm_export, "--rows-per-part", 10]).exit_code == 0
    for part in sorted(out.glob("part-*.parquet")):
        schema = pq.read_schema(part)
        assert schema.field("embedding").type == pa.list_(pa.float32(), 384)
        assert schema.field("id").type == pa.int64() and not schema.field("id").nullable
        meta = json.loads(schema.metadata[b"embedding_engine"])
        assert meta["dim"] == 384 and meta["dtype"] == "float32" and meta["pooling"] == "mean"
        assert meta["normalize"] is True and meta["max_length"] == 256 and meta["id"] == "row number"
        assert meta["model_manifest_hash"] == manifest_hash(read_manifest(minilm_export))
    success = json.loads((out / "_SUCCESS").read_text())
    assert success["model_manifest_hash"] == manifest_hash(read_manifest(minilm_export))
    assert success["rows"] == {"input": N, "written": N, "skipped": 0, "emptied": 0}
    assert success["parts"] == 3 and success["files"] == [f"part-0000{i}.parquet" for i in range(3)]
    assert success["options"]["rows_per_part"] == 10 and success["options"]["dtype"] == "float32"
    assert success["real_tokens"] > N and set(success["last_run"]["timings"]) >= {"model_load", "scan", "embed", "encode", "total"}
    # Temporary names never remain; only parts, the ledger and _SUCCESS.
    assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS", "_ledger.jsonl"] + [f"part-0000{i}.parquet" for i in range(3)]


def test_duckdb_reads_the_output(tmp_path, minilm_export, texts, reference):
    duckdb = pytest.importorskip("duckdb")
    src = write_corpus(tmp_path / "in.csv", "csv", texts, ids=list(range(100, 100 + N)))
    out = tmp_path / "out"
    assert run([src, out, "--model", minilm_export, "--id-column", "id", "--rows-per-part", 10]).exit_code == 0
    con = duckdb.connect()
    count, distinct = con.sql(f"select count(*), count(distinct id) from read_parquet('{out}/*.parquet')").fetchall()[0]
    assert (count, distinct) == (N, N)
    rows = con.sql(f"select id, embedding from read_parquet('{out}/*.parquet') order by id").fetchall()
    assert [r[0] for r in rows] == [str(i) for i in range(100, 100 + N)]  # CSV ids are read as strings
    np.testing.assert_allclose(np.array([r[1] for r in rows], dtype=np.float32), reference, atol=1e-5)
    # As a fixed-size array, for DuckDB's array_cosine_similarity.
    sim = con.sql(f"select array_cosine_similarity(embedding::FLOAT[384], embedding::FLOAT[384]) "
                  f"from read_parquet('{out}/*.parquet') limit 1").fetchall()[0][0]
    assert sim == pytest.approx(1.0, abs=1e-5)


def test_polars_reads_the_output_when_installed(tmp_path, minilm_export, texts, reference):
    pl = pytest.importorskip("polars")
    src = write_corpus(tmp_path / "in.txt", "txt", texts)
    out = tmp_path / "out"
    assert run([src, out, "--model", minilm_export, "--rows-per-part", 10]).exit_code == 0
    df = pl.read_parquet(f"{out}/*.parquet").sort("id")
    np.testing.assert_allclose(np.stack(df["embedding"].to_numpy()), reference, atol=1e-5)


def test_dtypes(tmp_path, minilm_export, texts, reference):
    from sentence_transformers.util import quantize_embeddings

    src = write_corpus(tmp_path / "in.jsonl", "jsonl", texts)
    got = {}
    for dtype in ("float16", "int8", "ubinary"):
        out = tmp_path / dtype
        r = run([src, out, "--model", minilm_export, "--dtype", dtype, "--rows-per-part", 10, "--window-rows", 16])
        assert r.exit_code == 0, r.output
        got[dtype] = (read_output(out), json.loads(pq.read_schema(next(out.glob("part-*.parquet"))).metadata[b"embedding_engine"]))
    f16, meta = got["float16"]
    assert f16.schema.field("embedding").type == pa.list_(pa.float16(), 384) and meta["dtype"] == "float16"
    np.testing.assert_allclose(embeddings(f16).astype(np.float32), reference, atol=1e-3)
    duckdb = pytest.importorskip("duckdb")
    rows = duckdb.connect().sql(f"select embedding from read_parquet('{tmp_path / 'float16'}/*.parquet') order by id").fetchall()
    np.testing.assert_allclose(np.array([r[0] for r in rows], dtype=np.float32), reference, atol=1e-3)
    i8, meta = got["int8"]
    assert i8.schema.field("embedding").type == pa.list_(pa.int8(), 384)
    ranges = np.array(meta["int8"]["ranges"], dtype=np.float32)
    # Calibrated on the first window (10 rows: windows end at part boundaries); with those ranges the values are
    # sentence-transformers' int8.
    np.testing.assert_allclose(ranges, np.vstack([reference[:10].min(0), reference[:10].max(0)]), atol=1e-5)
    want = quantize_embeddings(reference, precision="int8", ranges=ranges)
    assert np.abs(embeddings(i8).astype(int) - want.astype(int)).max() <= 1  # 1 step: float noise at a level edge
    binary, meta = got["ubinary"]
    assert binary.schema.field("embedding").type == pa.list_(pa.uint8(), 48) and "packbits" in meta["ubinary"]
    np.testing.assert_array_equal(embeddings(binary), quantize_embeddings(reference, precision="ubinary"))


def test_embedder_flags(tmp_path, minilm_export, real_texts):
    long_texts = [t for t in real_texts if len(t) > 600][:6]
    src = write_corpus(tmp_path / "in.jsonl", "jsonl", long_texts)
    # --max-length truncates (and the summary counts it); --max-batch-tokens changes batching only.
    r = run([src, tmp_path / "a", "--model", minilm_export, "--max-length", 32, "--max-batch-tokens", 64, "--device", "cpu",
             "--threads", 1, "--precision", "fp32", "--pooling", "mean", "--normalize"])
    assert r.exit_code == 0, r.output
    assert "truncated texts 6" in r.stdout
    want = Embedder(minilm_export, device="cpu", max_length=32).encode(long_texts)
    np.testing.assert_allclose(embeddings(read_output(tmp_path / "a")), want, atol=1e-5)
    meta = json.loads(pq.read_schema(next((tmp_path / "a").glob("part-*"))).metadata[b"embedding_engine"])
    assert meta["max_length"] == 32
    # --long-text chunk: overlapping windows averaged, nothing truncated.
    r = run([src, tmp_path / "b", "--model", minilm_export, "--max-length", 64, "--long-text", "chunk", "--chunk-stride", 8])
    assert r.exit_code == 0, r.output
    assert "truncated texts 0" in r.stdout
    want = Embedder(minilm_export, device="cpu", max_length=64, long_text="chunk", chunk_stride=8).encode(long_texts)
    np.testing.assert_allclose(embeddings(read_output(tmp_path / "b")), want, atol=1e-5)
    # Options baked into an export cannot be changed at run time: a usage error (exit 2), as any bad option.
    r = run([src, tmp_path / "c", "--model", minilm_export, "--no-normalize"])
    assert r.exit_code == 2 and "normalize" in r.output


def test_quiet_prints_nothing_and_log_lines_otherwise(tmp_path, minilm_export, texts):
    src = write_corpus(tmp_path / "in.txt", "txt", texts)
    r = run([src, tmp_path / "q", "--model", minilm_export, "--quiet"])
    assert r.exit_code == 0 and r.output == ""
    r = run([src, tmp_path / "v", "--model", minilm_export])
    assert r.exit_code == 0
    assert "scanned 24 rows" in r.stderr and "rows/s" in r.stderr  # not a terminal: log lines on stderr
    assert "real tokens" in r.stdout and "wall time" in r.stdout and "skipped rows 0" in r.stdout


def test_progress_bar_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    p = Progress(stream=stream)
    assert p.mode == "bar"
    p.start(total_rows=200, done_rows=0)
    p.advance(100, 5000)
    text = stream.getvalue()
    assert "\r" in text and "50.0%" in text and "100/200 rows" in text and "tokens/s" in text and "ETA" in text
    p.finish(Summary(rows=100))
    assert Progress(stream=io.StringIO()).mode == "log"
    quiet = io.StringIO()
    q = Progress("quiet", stream=quiet)
    q.start(10, 0)
    q.advance(10, 10)
    q.message("x")
    assert quiet.getvalue() == ""


def test_rerun_of_a_finished_output_is_a_no_op(tmp_path, minilm_export, texts):
    src = write_corpus(tmp_path / "in.jsonl", "jsonl", texts)
    out = tmp_path / "out"
    assert run([src, out, "--model", minilm_export]).exit_code == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    r = run([src, out, "--model", minilm_export])
    assert r.exit_code == 0 and "already complete" in r.stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_output_protection_and_overwrite(tmp_path, minilm_export, texts):
    src = write_corpus(tmp_path / "in.jsonl", "jsonl", texts)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    r = run([src, foreign, "--model", minilm_export])
    assert r.exit_code == 1 and "not written by engine embed" in r.output and "precious.txt" in r.output
    assert (foreign / "precious.txt").read_text() == "keep me"
    r = run([src, foreign, "--model", minilm_export, "--overwrite"])  # --overwrite only replaces an engine output
    assert r.exit_code == 1 and "does not look like an output" in r.output
    assert (foreign / "precious.txt").read_text() == "keep me"
    (foreign / "precious.txt").unlink()
    assert run([src, foreign, "--model", minilm_export]).exit_code == 0
    # A finished output with other options: refused, naming what differs; --overwrite starts over.
    r = run([src, foreign, "--model", minilm_export, "--dtype", "float16"])
    assert r.exit_code == 1 and "dtype" in r.output and "--overwrite" in r.output
    r = run([src, foreign, "--model", minilm_export, "--dtype", "float16", "--overwrite"])
    assert r.exit_code == 0
    assert read_output(foreign).schema.field("embedding").type.value_type == pa.float16()
    # OUTPUT may not be a file, nor contain the input.
    (tmp_path / "file").write_text("x")
    assert run([src, tmp_path / "file", "--model", minilm_export]).exit_code == 2  # click: not a folder
    r = run([src, tmp_path, "--model", minilm_export, "--overwrite"])
    assert r.exit_code == 1 and "inside OUTPUT" in r.output and src.exists()


def test_gzip_txt_and_crlf(tmp_path, minilm_export, texts, reference):
    src = tmp_path / "in.txt.gz"
    src.write_bytes(gzip.compress("".join(t + "\r\n" for t in texts).encode()))
    r = run([src, tmp_path / "out", "--model", minilm_export])
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(embeddings(read_output(tmp_path / "out")), reference, atol=1e-5)


def test_usage_errors_exit_2(tmp_path, minilm_export, texts):
    src = write_corpus(tmp_path / "in.jsonl", "jsonl", texts)
    assert run([src, tmp_path / "o", "--dtype", "float64"]).exit_code == 2
    assert run([src, tmp_path / "o", "--rows-per-part", 0]).exit_code == 2
    assert run([src, tmp_path / "o", "--keep-columns", "embedding"]).exit_code == 2
    r = run([tmp_path / "missing.jsonl", tmp_path / "o", "--model", minilm_export])
    assert r.exit_code == 2 and "does not exist" in r.output
    assert run([src]).exit_code == 2


def test_lancedb_reads_the_output_when_installed(tmp_path, minilm_export, texts, reference):
    lancedb = pytest.importorskip("lancedb")
    import pyarrow.dataset as ds

    src = write_corpus(tmp_path / "in.jsonl", "jsonl", texts)
    out = tmp_path / "out"
    assert run([src, out, "--model", minilm_export, "--rows-per-part", 10]).exit_code == 0
    table = lancedb.connect(tmp_path / "lance").create_table("docs", data=ds.dataset(out, format="parquet"))
    hits = table.search(reference[5]).metric("cosine").limit(1).to_list()
    assert hits[0]["id"] == 5


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv", "txt"])
def test_the_text_column_can_be_kept(fmt, tmp_path, minilm_export, texts):
    src = write_corpus(tmp_path / f"in.{fmt}", fmt, texts)
    r = run([src, tmp_path / "out", "--model", minilm_export, "--keep-columns", "text"])
    assert r.exit_code == 0, r.output
    table = read_output(tmp_path / "out")
    assert table.column_names == ["id", "text", "embedding"] and table.schema.field("text").type == pa.string()
    assert table.column("text").to_pylist() == texts


def test_output_inside_an_input_folder_is_not_read_as_input(tmp_path, minilm_export, texts):
    src = tmp_path / "data"
    write_corpus(src / "a.jsonl", "jsonl", texts)
    out = src / "embedded"
    assert run([src, out, "--model", minilm_export, "--rows-per-part", 10]).exit_code == 0
    r = run([src, out, "--model", minilm_export, "--rows-per-part", 10])  # the parts are not new input files
    assert r.exit_code == 0 and "already complete" in r.stdout
    assert read_output(out).num_rows == N


def test_a_model_folder_is_exported_once_into_the_cache(tmp_path, texts):
    """--model with a Hugging Face folder: exported on first use (announced), reused after; pooling/normalize apply."""
    from benchmarks.embed_rss import tiny_bert_folder

    model = tiny_bert_folder(tmp_path / "tiny-bert")
    src = write_corpus(tmp_path / "in.txt", "txt", texts)
    opts = ["--model", model, "--cache-dir", tmp_path / "cache", "--pooling", "mean", "--no-normalize", "--max-length", 32]
    r = run([src, tmp_path / "a", *opts])
    assert r.exit_code == 0, r.output
    assert "exporting" in r.stderr and "cache" in r.stderr
    table = read_output(tmp_path / "a")
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 32)
    meta = json.loads(table.schema.metadata[b"embedding_engine"])
    assert meta["pooling"] == "mean" and meta["normalize"] is False and meta["max_length"] == 32
    r = run([src, tmp_path / "b", *opts])
    assert r.exit_code == 0 and "exporting" not in r.stderr
    np.testing.assert_array_equal(embeddings(read_output(tmp_path / "b")), embeddings(table))


def test_summary_separates_model_load_from_embedding_throughput(tmp_path, minilm_export, texts):
    """The end-to-end rate includes model load and first-use export; the embedding rate does not. Both are shown."""
    src = write_corpus(tmp_path / "in.txt", "txt", texts)
    r = run([src, tmp_path / "o", "--model", minilm_export])
    assert r.exit_code == 0, r.output
    load = re.search(r"wall time \S+ \(model load (\S+), scan (\S+), embedding (\S+)\)", r.stdout)
    rates = re.search(r"embedding throughput ([\d,.]+) rows/s, [\d,]+ tokens/s; end to end ([\d,.]+) rows/s", r.stdout)
    assert load and rates, r.stdout
    assert float(rates[1].replace(",", "")) >= float(rates[2].replace(",", "")) > 0
    success = json.loads((tmp_path / "o" / "_SUCCESS").read_text())["last_run"]
    assert success["embedding_rows_per_second"] >= success["rows_per_second"] > 0
