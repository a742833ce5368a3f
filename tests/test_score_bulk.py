"""engine score: (query, text) pairs of a corpus -> a parquet dataset of scores, equal to Reranker.predict and
sentence-transformers' CrossEncoder.predict, exactly-once and resumable like engine embed; the refusals."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from embed_helpers import crash_before_part_record, run, write_corpus

from engine import Reranker

N = 23  # rows: 4 parts of 6 (the last short), windows of 4


@pytest.fixture(scope="module")
def rerankers(tiny_cross_encoders, tmp_path_factory) -> dict:
    """fp32 exports of the one-label and the three-label tiny BERT cross-encoders."""
    from export import ExportOptions, export_model

    root, out = tmp_path_factory.mktemp("score-exports"), {}
    for arch in ("bert", "bert-3labels"):
        out[arch] = root / arch
        export_model(ExportOptions(model=str(tiny_cross_encoders[arch]), out_dir=str(out[arch])), log=lambda _m: None)
    return out


@pytest.fixture(scope="module")
def pairs(real_texts) -> list[tuple[str, str]]:
    """Real pairs: short pydoc lines as queries against paragraphs, some past the tiny models' 64 tokens."""
    queries = [t for t in real_texts if len(t.split()) <= 8][:5]
    docs = real_texts[::29][:N]
    return [(queries[i % len(queries)], d) for i, d in enumerate(docs)]


def corpus(tmp_path, fmt: str, pairs) -> tuple:
    ids = [f"doc-{(i * 7) % N:02d}" for i in range(N)]  # unique, not in sorted order
    src = write_corpus(tmp_path / f"in.{fmt}", fmt, [d for _, d in pairs], ids,
                       {"query": [q for q, _ in pairs], "lang": ["en"] * N})
    return src, ids


def read_in_order(out) -> pa.Table:
    """The output's rows in part order (the input's order)."""
    return ds.dataset(sorted(str(p) for p in out.glob("part-*.parquet")), format="parquet").to_table()


def scores(table: pa.Table) -> np.ndarray:
    col = table.column("score").combine_chunks()
    if pa.types.is_fixed_size_list(col.type):
        return col.flatten().to_numpy().reshape(len(col), col.type.list_size)
    return col.to_numpy()


@pytest.mark.parametrize("arch, fmt", [("bert", "jsonl"), ("bert-3labels", "parquet")])
def test_scores_match_reranker_and_cross_encoder(rerankers, tiny_cross_encoders, pairs, tmp_path, arch, fmt):
    from sentence_transformers import CrossEncoder

    src, ids = corpus(tmp_path, fmt, pairs)
    out = tmp_path / "out"
    res = run([src, out, "--model", rerankers[arch], "--id-column", "id", "--keep-columns", "lang",
               "--rows-per-part", 6, "--window-rows", 4, "--device", "cpu"], "score")
    assert res.exit_code == 0, res.output
    table = read_in_order(out)
    assert table.column_names == ["id", "lang", "score"]
    assert table.column("id").to_pylist() == ids and table.column("lang").to_pylist() == ["en"] * N
    got = scores(table)
    want_rr = Reranker(rerankers[arch], device="cpu").predict(pairs)
    want_ce = CrossEncoder(str(tiny_cross_encoders[arch]), device="cpu").predict(pairs)
    assert got.dtype == np.float32 and got.shape == want_ce.shape == ((N,) if arch == "bert" else (N, 3))
    assert np.abs(got - want_rr).max() <= 1e-4 and np.abs(got - want_ce).max() <= 1e-4
    assert np.ptp(want_ce) > 100 * 1e-4  # the random head separates pairs far beyond the tolerance
    success = json.loads((out / "_SUCCESS").read_text())
    assert success["task"] == "rerank" and success["rows"]["written"] == N and success["parts"] == 4
    assert success["identity"]["query_column"] == "query" and success["identity"]["raw_scores"] is False
    assert success["truncated"] > 0  # some paragraphs pass 64 tokens
    meta = json.loads(pq.read_schema(out / "part-00000.parquet").metadata[b"embedding_engine"])
    assert meta["task"] == "rerank" and meta["num_labels"] == (1 if arch == "bert" else 3)
    assert f"scored {N} pairs into {out}" in res.output
    assert f"truncated pairs {success['truncated']}" in res.output and "backend onnxruntime fp32" in res.output


def test_raw_scores_are_the_logits_from_csv(rerankers, tiny_cross_encoders, pairs, tmp_path):
    import torch
    from sentence_transformers import CrossEncoder

    src, _ = corpus(tmp_path, "csv", pairs)
    out = tmp_path / "out"
    res = run([src, out, "--model", rerankers["bert"], "--raw-scores", "-q", "--device", "cpu"], "score")
    assert res.exit_code == 0, res.output
    table = read_in_order(out)
    assert table.column("id").to_pylist() == list(range(N))  # no --id-column: row numbers
    want = CrossEncoder(str(tiny_cross_encoders["bert"]), device="cpu").predict(pairs, activation_fn=torch.nn.Identity())
    assert np.abs(scores(table) - want).max() <= 1e-4
    assert not (want >= 0).all() or not (want <= 1).all()  # logits, not sigmoid outputs


def test_resume_after_a_crash_is_exactly_once(rerankers, pairs, tmp_path, monkeypatch):
    src, ids = corpus(tmp_path, "jsonl", pairs)
    out = tmp_path / "out"
    args = [src, out, "--model", rerankers["bert"], "--id-column", "id", "--rows-per-part", 6, "--window-rows", 4,
            "--device", "cpu", "-q"]
    crash_before_part_record(monkeypatch, 2, args, "score")  # part 2's file is renamed into place, its record never lands
    assert not (out / "_SUCCESS").exists()
    (out / ".part-00003.parquet.tmp").write_bytes(b"torn")  # a temp file of a killed attempt
    # Other options do not resume it: the fingerprint covers raw-scores and the columns.
    refused = run([*args, "--raw-scores"], "score")
    assert refused.exit_code == 1 and "raw_scores" in refused.output, refused.output
    res = run(args, "score")
    assert res.exit_code == 0, res.output
    table = read_in_order(out)
    assert table.column("id").to_pylist() == ids  # exactly one row per input, in order
    want = Reranker(rerankers["bert"], device="cpu").predict(pairs)
    assert np.abs(scores(table) - want).max() <= 1e-4
    assert not list(out.glob(".*.tmp"))
    again = run(args[:-1], "score")
    assert again.exit_code == 0 and "already complete" in again.output and "score again" in again.output


def test_refusals(rerankers, tiny_models, pairs, tmp_path):
    src, _ = corpus(tmp_path, "jsonl", pairs)
    model = ["--model", rerankers["bert"], "--device", "cpu"]
    for flag in (["--ray"], ["--lancedb-table", "t"]):
        res = run([src, tmp_path / "o1", *model, *flag], "score")
        assert res.exit_code == 2 and "not supported for scoring" in res.output, res.output
    res = run([src, tmp_path / "o2", "--model", tiny_models["bert"], "--device", "cpu"], "score")
    assert res.exit_code == 2 and "task 'embed'" in res.output and "cannot score text pairs" in res.output, res.output
    res = run([src, tmp_path / "o3", *model])  # a reranker export given to engine embed
    assert res.exit_code == 2 and "task 'rerank'" in res.output and "cannot embed text" in res.output, res.output
    assert not (tmp_path / "o3" / "_SUCCESS").exists()
    res = run([src, tmp_path / "o4", *model, "--query-column", "question"], "score")
    assert res.exit_code == 2 and str(src) in res.output and "no column 'question' (--query-column)" in res.output
    assert "available columns: id, text, query, lang" in res.output, res.output


@pytest.mark.parametrize("column, value, why", [("query", None, "null value in the --query-column 'query'"),
                                                ("text", 7, "non-string value (int) in the --text-column 'text'")])
def test_a_bad_value_names_file_row_and_column(rerankers, pairs, tmp_path, column, value, why):
    bad = [list(p) for p in pairs[:5]]
    bad[3][column == "text"] = value
    src = write_corpus(tmp_path / "in.jsonl", "jsonl", [t for _, t in bad], extra={"query": [q for q, _ in bad]})
    res = run([src, tmp_path / "out", "--model", rerankers["bert"], "--device", "cpu"], "score")
    assert res.exit_code == 1 and f"{src}, line 4 (id 3): {why}" in res.output, res.output
    assert "--on-bad-row skip" in res.output
    skipped = run([src, tmp_path / "out2", "--model", rerankers["bert"], "--device", "cpu", "--on-bad-row", "skip",
                   "-q"], "score")
    assert skipped.exit_code == 0, skipped.output
    assert read_in_order(tmp_path / "out2").column("id").to_pylist() == [0, 1, 2, 4]
