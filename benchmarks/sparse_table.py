"""python -m benchmarks.sparse_table: issue 26's speed and size table for SPLADE sparse encoders, on this CPU.

sentence-transformers' SparseEncoder.encode_document (torch fp32, batch 32) against the engine's SparseEncoder on the
fp32, int8 and (on CPUs with bf16 units and openvino) bf16 exports of the same model: all-MiniLM-L6-v2's trained
encoder with a random MLM head (benchmarks.random_sparse_encoders; no SPLADE weights are reachable here; a MiniLM
SPLADE model has this shape and a 30,522-token vocabulary). Texts are real, of mixed length (benchmarks.corpus).
Every system encodes the same texts once per round, systems in rotated order per round (one process, --threads each),
medians over rounds; quality per system against sentence-transformers: the share of active dimensions shared, the
max abs of the weights. The sparsification cost (the head: non-zero / top-k of each (V,) row) is timed apart from the
graph run. The output size: Parquet bytes per text of the `sparse` column against the dense `embedding` column
(all-MiniLM-L6-v2 float32), both written by engine embed from the same texts.

Writes results.json and table.md to --out.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from .rerank_table import cpu_flags, load_average


def active_overlap(got, want) -> tuple[float, float]:
    """(mean Jaccard of active dimensions, max abs weight difference) of two lists of (indices, values) rows."""
    import numpy as np

    jac, worst = [], 0.0
    for (gi, gv), (wi, wv) in zip(got, want):
        a, b = set(gi.tolist()), set(wi.tolist())
        jac.append(len(a & b) / max(1, len(a | b)))
        ga, wa = dict(zip(gi.tolist(), gv.tolist())), dict(zip(wi.tolist(), wv.tolist()))
        worst = max([worst] + [abs(ga.get(k, 0.0) - wa.get(k, 0.0)) for k in a | b])
    return float(np.mean(jac)), float(worst)


def st_rows(st, texts: list[str]):
    """sentence-transformers' document-side sparse vectors as (indices int32, values float32) rows."""
    import numpy as np

    out = st.encode_document(texts, batch_size=32, convert_to_tensor=True, convert_to_sparse_tensor=True).coalesce()
    idx, val = out.indices().numpy(), out.values().numpy()
    rows = []
    for r in range(len(texts)):
        m = idx[0] == r
        order = np.argsort(idx[1][m])
        rows.append((idx[1][m][order].astype(np.int32), val[m][order].astype(np.float32)))
    return rows


def head_cost(encoder, texts: list[str]) -> dict:
    """Seconds per text of the graph run (inside the backend) and of the head on its (V,) rows, for texts."""
    import numpy as np

    from engine.runtime.heads import sparse_row

    encoder.reset_stats()
    dense = encoder.encode(texts, convert_to_tensor=False, convert_to_sparse_tensor=False)
    graph = encoder.stats.session_seconds
    rows = np.stack([np.asarray(d, dtype=np.float32) for d in dense])  # (N, V)
    t = time.perf_counter()
    for row in rows:
        sparse_row(row, encoder.max_active_dims)
    head = time.perf_counter() - t
    return {"texts": len(texts), "graph_s_per_text": graph / len(texts), "head_s_per_text": head / len(texts),
            "head_share": head / (graph + head)}


def column_bytes(folder: Path, column: str) -> int:
    """Compressed Parquet bytes of one top-level column (all its leaves) over every part of folder."""
    import pyarrow.parquet as pq

    total = 0
    for part in sorted(folder.glob("part-*.parquet")):
        meta = pq.ParquetFile(part).metadata
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            total += sum(rg.column(c).total_compressed_size for c in range(rg.num_columns)
                         if rg.column(c).path_in_schema.split(".")[0] == column)
    return total


def sizes(texts: list[str], sparse_export: Path, work: Path, threads: int) -> dict:
    """Bytes per text of `sparse` and `embedding`, each written by engine embed from the same texts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from engine.bulk import EmbedJob, run_job
    from engine.config import EmbedderConfig

    work.mkdir(parents=True, exist_ok=True)
    src = work / "texts.parquet"
    pq.write_table(pa.table({"text": texts}), src)
    out = {}
    for name, model in (("sparse", str(sparse_export)), ("embedding", None)):
        job = EmbedJob(input=str(src), output=str(work / name), overwrite=True, quiet=True,
                       embedder=EmbedderConfig(model=model, device="cpu", threads=threads, precision="fp32"))
        run_job(job)
        out[name] = column_bytes(work / name, name) / len(texts)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sparse_table", description=__doc__.split("\n\n")[0])
    p.add_argument("--texts", type=int, default=3000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--quick", action="store_true", help="200 texts, 1 round, fp32 only (a smoke run)")
    p.add_argument("--out", type=Path, default=Path("build/sparse-table"))
    p.add_argument("--cache", type=Path, default=None, help="where the sparse encoder and its exports are kept")
    args = p.parse_args(argv)
    if args.quick:
        args.texts, args.repeats = min(args.texts, 200), 1

    import numpy as np
    import torch
    from sentence_transformers import SparseEncoder as STSparseEncoder

    from engine import SparseEncoder
    from engine.errors import ModelFolderError
    from export import ExportOptions, ParityError, export_model

    from . import corpus as C
    from .models import default_cache
    from .random_sparse_encoders import minilm_sparse_encoder
    from .sections import _bf16_here

    torch.set_num_threads(args.threads)
    cache = args.cache or default_cache() / "sparse"
    folder = cache / "minilm-splade"
    if not (folder / "modules.json").is_file():
        minilm_sparse_encoder(folder)
    precisions = ["fp32"] if args.quick else ["fp32", "int8"] + (["bf16"] if _bf16_here() else [])
    texts = C.mixed_texts(max(args.texts, 3000))[: args.texts]
    st = STSparseEncoder(str(folder), device="cpu")
    st.max_seq_length = args.max_length
    systems, notes, exports = {"SparseEncoder.encode_document (torch fp32, batch 32)": lambda t: st_rows(st, t)}, [], {}
    for prec in precisions:
        out = cache / f"export-{prec}-{args.max_length}"
        if not (out / "manifest.json").is_file():
            try:
                export_model(ExportOptions(model=str(folder), out_dir=str(out), precision=prec, max_length=args.max_length,
                                           overwrite=True), log=lambda _m: None)
            except ParityError as err:
                notes.append(f"{prec}: export missed its gate ({str(err).splitlines()[0][:160]}); measured anyway")
        if not (out / "manifest.json").is_file():
            notes.append(f"{prec}: no export written; not measured")
            continue
        try:
            enc = SparseEncoder(out, threads=args.threads, device="cpu")
        except ModelFolderError as err:  # an export that missed its gate is not marked valid: the engine refuses it
            notes.append(f"{prec}: {str(err)[:200]}; not measured")
            continue
        exports[prec] = out
        systems[f"engine {prec} ({enc.backend_choice.name})"] = enc.encode_sparse
    tok = SparseEncoder(exports["fp32"], threads=args.threads, device="cpu").tokenizer
    real_tokens = sum(min(len(e.ids), args.max_length) for e in tok.encode_batch(texts))
    names = list(systems)
    for name in names:  # warm-up (first-call allocations, OpenVINO compilation)
        systems[name](texts[:32])
    times, rows_of = {n: [] for n in names}, {}
    for r in range(args.repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            t = time.perf_counter()
            rows_of[name] = systems[name](texts)
            times[name].append(time.perf_counter() - t)
    base = names[0]
    rows = []
    for name in names:
        med = statistics.median(times[name])
        jac, worst = active_overlap(rows_of[name], rows_of[base])
        rows.append({"system": name, "seconds": med, "texts_per_s": len(texts) / med, "tokens_per_s": real_tokens / med,
                     "x_sentence_transformers": statistics.median(times[base]) / med, "times": times[name],
                     "active_jaccard": jac, "max_abs": worst,
                     "active_per_text": float(np.mean([len(i) for i, _ in rows_of[name]]))})
    head = head_cost(SparseEncoder(exports["fp32"], threads=args.threads, device="cpu"), texts[:100])
    size = sizes(texts, exports["fp32"], args.out / "embed", args.threads)
    meta = {"flags": cpu_flags(), "load_average_end": load_average(), "texts": len(texts), "real_tokens": real_tokens,
            "max_length": args.max_length, "threads": args.threads, "repeats": args.repeats, "notes": notes,
            "head": head, "bytes_per_text": size,
            "command": "python -m benchmarks.sparse_table " + " ".join(argv if argv is not None else __import__("sys").argv[1:])}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    table = report(rows, meta)
    (args.out / "table.md").write_text(table)
    print(table)
    return 0


def report(rows: list[dict], meta: dict) -> str:
    h, b = meta["head"], meta["bytes_per_text"]
    lines = [f"# Sparse encoders (MiniLM-size SPLADE, random MLM head): {meta['texts']:,} mixed real texts, "
             f"max_length {meta['max_length']}, {meta['threads']} threads, median of {meta['repeats']}",
             "", f"CPU flags: {meta['flags']}; load average at the end: {meta['load_average_end']}; "
             f"real tokens: {meta['real_tokens']:,}", "",
             "| system | texts/s | real tok/s | x sentence-transformers | active dims / text | active-set Jaccard | max abs |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['system']} | {r['texts_per_s']:,.1f} | {r['tokens_per_s']:,.0f} | "
                     f"{r['x_sentence_transformers']:.2f} | {r['active_per_text']:.0f} | {r['active_jaccard']:.3f} | "
                     f"{r['max_abs']:.2g} |")
    lines += ["", f"Sparsification (engine fp32, {h['texts']} texts): graph {h['graph_s_per_text'] * 1e3:.2f} ms/text, "
              f"head (non-zero / top-k of the (V,) row) {h['head_s_per_text'] * 1e3:.3f} ms/text "
              f"({h['head_share']:.1%} of the two)", "",
              f"Output size (engine embed, Parquet zstd): `sparse` {b['sparse']:,.0f} bytes/text, dense `embedding` "
              f"(all-MiniLM-L6-v2 float32, 384 dims) {b['embedding']:,.0f} bytes/text "
              f"({b['sparse'] / b['embedding']:.2f}x)", "",
              *[f"note: {n}" for n in meta["notes"]], f"command: `{meta['command']}`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
