"""python -m benchmarks.retrieval: retrieval quality and adapter overhead on the stdlib names -> docstrings task.

1. Quality: recall@10 / MRR@10 (exact cosine) for sentence-transformers and the engine at fp32, int8 (and fp16 on
   CUDA: onnxruntime's CPU fp16 kernels are emulated, so it is not run on CPU), with top-1 agreement vs
   sentence-transformers: what int8 costs in retrieval.
2. Adapter overhead: seconds to index the documents through each adapter into its store (LangChain
   InMemoryVectorStore, LlamaIndex VectorStoreIndex, Chroma collection, LanceDB table) vs bare Embedder.encode of the
   same texts, interleaved in rounds, medians.

Writes benchmarks/results/<machine>/retrieval.md and retrieval.json (CPU flags included).
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
from .retrieval_task import load_task, scores, top1_agreement, top_k

RESULTS = Path(__file__).resolve().parent / "results"
def quality(task, encoders: dict) -> list[dict]:
    """One row per encoder: recall@10, MRR@10, top-1 agreement with the first (sentence-transformers)."""
    rows, reference = [], None
    for name, (encode_q, encode_d) in encoders.items():
        t = time.perf_counter()
        ranked = top_k(encode_q(task.queries), encode_d(task.docs), task.doc_ids, 10)
        reference = reference or ranked
        rows.append({"system": name, **scores(ranked, task.answers, 10), "top1_agreement": top1_agreement(ranked, reference),
                     "seconds": round(time.perf_counter() - t, 1)})
        print(rows[-1], flush=True)
    return rows


def overhead(task, embedder, rounds: int) -> dict[str, list[float]]:
    """Seconds to index task.docs through each adapter and with bare Embedder.encode, interleaved per round."""
    import chromadb
    import lancedb
    from langchain_core.vectorstores import InMemoryVectorStore
    from lancedb.embeddings import get_registry
    from lancedb.pydantic import LanceModel, Vector
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode

    from engine.integrations.chroma import EngineEmbeddingFunction
    from engine.integrations.langchain import EngineEmbeddings
    from engine.integrations.lancedb import NAME
    from engine.integrations.llamaindex import EngineEmbedding

    docs, ids = task.docs, task.doc_ids
    func = get_registry().get(NAME).create(embedder=embedder)

    class Doc(LanceModel):
        id: str
        text: str = func.SourceField()
        vector: Vector(func.ndims()) = func.VectorField()

    tmp = Path(tempfile.mkdtemp(prefix="retrieval-bench-"))

    def lance(r):
        lancedb.connect(tmp / f"lance{r}").create_table("docs", schema=Doc).add([{"id": i, "text": t} for i, t in zip(ids, docs)])

    def chroma(r):
        client = chromadb.PersistentClient(path=str(tmp / f"chroma{r}"))
        col = client.create_collection("docs", embedding_function=EngineEmbeddingFunction(embedder),
                                       configuration={"hnsw": {"space": "cosine"}})
        for s in range(0, len(docs), 5000):  # Chroma caps one add() at its max batch size
            col.add(ids=ids[s:s + 5000], documents=docs[s:s + 5000])

    runs = {
        "bare Embedder.encode": lambda r: embedder.encode(docs),
        "LangChain InMemoryVectorStore": lambda r: InMemoryVectorStore(EngineEmbeddings(embedder)).add_texts(docs, ids=ids),
        "LlamaIndex VectorStoreIndex": lambda r: VectorStoreIndex([TextNode(id_=i, text=t) for i, t in zip(ids, docs)],
                                                                  embed_model=EngineEmbedding(embedder)),
        "Chroma collection": chroma,
        "LanceDB table": lance,
    }
    out: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(rounds):
        for name, fn in runs.items():
            t = time.perf_counter()
            fn(r)
            out[name].append(time.perf_counter() - t)
            print(name, round(out[name][-1], 2), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--docs", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the overhead runs")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    from sentence_transformers import SentenceTransformer

    from engine import Embedder
    from export import ExportOptions, export_model

    task = load_task(args.queries, args.docs)
    model = bundled_model_path()
    work = Path(tempfile.mkdtemp(prefix="retrieval-exports-"))
    st = SentenceTransformer(str(model), device=args.device)
    engines = {}
    for precision in ("fp32", "int8", "int8-fast") + (("fp16",) if args.device == "cuda" else ()):
        folder = work / precision
        export_model(ExportOptions(model=str(model), out_dir=str(folder), precision=precision), log=lambda _m: None)
        engines[precision] = Embedder(folder, device=args.device, threads=args.threads)
    encoders = {"sentence-transformers (PyTorch fp32)": (lambda q: st.encode_query(q), lambda d: st.encode_document(d))}
    for precision, emb in engines.items():
        encoders[f"engine {precision}"] = (lambda q, e=emb: e.encode_query(q), lambda d, e=emb: e.encode_document(d))
    rows = quality(task, encoders)
    times = overhead(task, engines["fp32"], args.rounds)
    bare = statistics.median(times["bare Embedder.encode"])
    result = {
        "task": {"queries": len(task.queries), "docs": len(task.docs), "source": "benchmarks/retrieval_task.py"},
        **run_context(args.device), "device": args.device,
        "quality": rows, "index_seconds": {k: [round(x, 2) for x in v] for k, v in times.items()},
        "overhead": {k: round(statistics.median(v) / bare - 1, 3) for k, v in times.items()},
    }
    save_result(RESULTS, "retrieval", result, report(result, args))


def report(r: dict, args) -> str:
    cmd = f"python -m benchmarks.retrieval --queries {args.queries} --docs {args.docs} --rounds {args.rounds}" + \
        (f" --device {args.device}" if args.device != "cpu" else "")
    lines = [f"# Retrieval quality and adapter overhead ({r['machine']})", "",
             f"`{cmd}` on {r['cpu']} ({r['cpu_count']} cores; flags {', '.join(r['cpu_flags']) or 'none recorded'}), "
             f"Python {r['python']}, load average at the end {', '.join(f'{x:.1f}' for x in r['loadavg'])}.", "",
             f"Task: {r['task']['queries']:,} stdlib names as queries over {r['task']['docs']:,} documents (each name's "
             "docstring, other docstrings and pydoc paragraphs); exact cosine search.", "",
             "| system | recall@10 | MRR@10 | top-1 same as sentence-transformers |", "|---|---|---|---|"]
    for row in r["quality"]:
        lines.append(f"| {row['system']} | {row['recall@10']:.4f} | {row['mrr@10']:.4f} | {row['top1_agreement']:.2%} |")
    lines += ["", f"Indexing {r['task']['docs']:,} documents through each adapter into its store (median of "
              f"{len(next(iter(r['index_seconds'].values())))} interleaved rounds; the store's own work is included):", "",
              "| route | median seconds | vs bare encode | each round |", "|---|---|---|---|"]
    for name, secs in r["index_seconds"].items():
        lines.append(f"| {name} | {statistics.median(secs):.1f} | {r['overhead'][name]:+.0%} | "
                     f"{', '.join(f'{x:.1f}' for x in secs)} |")
    if max(r["loadavg"]) > r["cpu_count"]:
        lines += ["", f"The load average exceeded the {r['cpu_count']} cores during this run (other work shared the "
                  "machine): the quality figures are exact, the times are not; rerun on a quiet machine for overhead."]
    return "\n".join(lines) + "\n"


def rewrite_report(machine: str) -> None:
    """Regenerate retrieval.md from a saved retrieval.json (after a change to the report's layout)."""
    folder = RESULTS / machine
    r = json.loads((folder / "retrieval.json").read_text())
    args = argparse.Namespace(queries=r["task"]["queries"], docs=r["task"]["docs"],
                              rounds=len(next(iter(r["index_seconds"].values()))), device=r["device"])
    (folder / "retrieval.md").write_text(report(r, args))


if __name__ == "__main__":
    main()
