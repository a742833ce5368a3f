"""python -m benchmarks.lance_index: what `engine embed --lancedb-table NAME --index` costs in retrieval.

The retrieval task's documents (stdlib docstrings among distractors; benchmarks/retrieval_task.py) go through the real
sink with --index (at 5,000 rows: IVF_HNSW_SQ, one partition). Its queries are then answered by LanceDB five ways:
exact search (the index bypassed), the index --index built without and with refine_factor(10) (a re-rank of the
candidates with the full vectors), and the IVF_PQ index --index builds from a million rows (about sqrt(rows)
partitions, dim/16 sub-vectors, here over the same rows) without and with refine_factor(10).
Each row: recall@10, MRR@10, the mean overlap of its top 10 with the exact top 10, the median seconds per query.

Writes benchmarks/results/<machine>/lance_index.md and lance_index.json (CPU flags included).
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from .corpus import bundled_model_path
from .machine import run_context, save_result
from .retrieval_task import load_task, scores

RESULTS = Path(__file__).resolve().parent / "results"


def answer(table, vectors, limit: int, **search) -> tuple[list[list[str]], list[float]]:
    """Top-`limit` ids per query vector and the seconds each query took."""
    ranked, seconds = [], []
    for v in vectors:
        t = time.perf_counter()
        q = table.search(v, vector_column_name="embedding").distance_type("cosine").limit(limit)
        q = q.bypass_vector_index() if search.get("exact") else q
        q = q.refine_factor(search["refine"]) if search.get("refine") else q
        ranked.append(q.to_arrow().column("id").to_pylist())
        seconds.append(time.perf_counter() - t)
    return ranked, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--docs", type=int, default=5000)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    import lancedb

    from engine import Embedder, EmbedderConfig
    from engine.bulk import Progress, run_embed_job
    from engine.bulk.job import EmbedJob
    from engine.bulk.output.lance_index import create_index, describe, index_plan

    task = load_task(args.queries, args.docs)
    work = Path(tempfile.mkdtemp(prefix="lance-index-"))
    src = work / "docs.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": d}) + "\n" for i, d in zip(task.doc_ids, task.docs)))
    cfg = EmbedderConfig(model=str(bundled_model_path()), device="cpu", threads=args.threads)
    summary = run_embed_job(EmbedJob(input=str(src), output=str(work / "db"), id_column="id", lancedb_table="docs",
                                     index=True, quiet=True, embedder=cfg), Progress("quiet"))
    table = lancedb.connect(work / "db").open_table("docs")
    built = json.loads((work / "db" / ".docs.engine-embed" / "_SUCCESS").read_text())["index"]
    queries = Embedder.from_config(cfg).encode_query(task.queries)  # (Q, D) float32
    dim = queries.shape[1]
    exact, exact_s = answer(table, queries, 10, exact=True)
    rows = [("exact search (no index)", exact, exact_s)]
    rows.append((f"--index: {describe(built)}", *answer(table, queries, 10)))
    rows.append((f"--index: {describe(built)} + refine_factor(10)", *answer(table, queries, 10, refine=10)))
    pq = index_plan(1_000_000, dim) | {"num_partitions": round(len(task.docs) ** 0.5)}
    t = time.perf_counter()
    create_index(table, pq)
    pq_seconds = time.perf_counter() - t
    rows.append((f"{describe(pq)}, the type --index picks from 1M rows", *answer(table, queries, 10)))
    rows.append((f"{describe(pq)} + refine_factor(10)", *answer(table, queries, 10, refine=10)))
    result = {
        "task": {"queries": len(task.queries), "docs": len(task.docs), "source": "benchmarks/retrieval_task.py"},
        **run_context("cpu"), "lancedb": lancedb.__version__,
        "embed_seconds": summary.timings.get("embed"), "index_seconds": summary.timings.get("finish"),
        "ivf_pq_seconds": round(pq_seconds, 2),
        "rows": [{"search": name, **scores(ranked, task.answers, 10),
                  "overlap_with_exact": statistics.mean(len(set(a) & set(b)) / 10 for a, b in zip(ranked, exact)),
                  "median_ms": round(1e3 * statistics.median(secs), 2)} for name, ranked, secs in rows],
    }
    save_result(RESULTS, "lance_index", result, report(result, args))


def report(r: dict, args) -> str:
    cmd = f"python -m benchmarks.lance_index --queries {args.queries} --docs {args.docs}"
    lines = [f"# LanceDB index built by engine embed --index ({r['machine']})", "",
             f"`{cmd}` on {r['cpu']} ({r['cpu_count']} cores; flags {', '.join(r['cpu_flags']) or 'none recorded'}), "
             f"Python {r['python']}, lancedb {r['lancedb']}, load average at the end "
             f"{', '.join(f'{x:.1f}' for x in r['loadavg'])}.", "",
             f"Task: {r['task']['queries']:,} stdlib names as queries over {r['task']['docs']:,} documents, embedded by "
             f"all-MiniLM-L6-v2 into a LanceDB table with `engine embed --lancedb-table docs --index` (index built in "
             f"{r['index_seconds']:.1f} s; the IVF_PQ one in {r['ivf_pq_seconds']:.1f} s).", "",
             "| search | recall@10 | MRR@10 | top-10 overlap with exact | median ms per query |", "|---|---|---|---|---|"]
    for row in r["rows"]:
        lines.append(f"| {row['search']} | {row['recall@10']:.4f} | {row['mrr@10']:.4f} | "
                     f"{row['overlap_with_exact']:.1%} | {row['median_ms']:.1f} |")
    if max(r["loadavg"]) > r["cpu_count"]:
        lines += ["", f"The load average exceeded the {r['cpu_count']} cores during this run (other work shared the "
                  "machine): the times are not a quiet machine's; the quality figures do not depend on load."]
    lines += ["", "Index training is random (k-means, graph construction): the indexed rows' quality figures vary by "
              "about 0.001 from run to run."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
