"""`make demo`: embed the bundled sample corpus with `engine embed`, then answer a few questions by nearest neighbour.

The corpus is benchmarks/data/pydoc_topics.jsonl.gz (Python's own documentation; see benchmarks/build_demo_corpus.py).
The model is the default, bundled all-MiniLM-L6-v2. The output lands in demo-out/pydoc-topics; rerunning resumes or
finds it complete.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "benchmarks" / "data" / "pydoc_topics.jsonl.gz"
OUTPUT = ROOT / "demo-out" / "pydoc-topics"
QUERIES = ("how do I open a file and read it line by line",
           "run a shell command and capture its output",
           "what happens when an exception is raised inside a with block")


def main() -> None:
    cmd = [sys.executable, "-m", "engine", "embed", str(CORPUS), str(OUTPUT), "--id-column", "id",
           "--keep-columns", "topic,text", "--rows-per-part", "1000"]
    print("$ engine embed " + " ".join(str(c) for c in cmd[4:]).replace(str(ROOT) + "/", ""), flush=True)
    started = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    print(f"(engine embed finished in {time.perf_counter() - started:.1f}s)\n")

    from engine import Embedder

    table = ds.dataset(OUTPUT, format="parquet").to_table()
    col = table.column("embedding").combine_chunks()
    vectors = col.flatten().to_numpy().reshape(len(col), col.type.list_size)
    print(f"read {table.num_rows:,} rows back with pyarrow.dataset; embedding column: {table.schema.field('embedding').type}")
    embedder = Embedder()  # same model; its vectors are unit length, so a dot product is the cosine
    ids, topics, texts = (table.column(c).to_pylist() for c in ("id", "topic", "text"))
    for query in QUERIES:
        scores = vectors @ embedder.encode(query)
        print(f"\nquery: {query}")
        for i in np.argsort(-scores)[:3]:
            snippet = textwrap.shorten(texts[i], 110, placeholder=" ...")
            print(f"  {scores[i]:.3f}  [{ids[i]}]  {snippet}")


if __name__ == "__main__":
    main()
