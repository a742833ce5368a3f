"""engine embed at scale: peak RSS for 100k vs 1M rows, and the cost of its I/O against the bare Embedder.

    python -m benchmarks.embed_rss            # both parts (about 6 minutes on 2 cores)
    python -m benchmarks.embed_rss --rss-only / --throughput-only

RSS: 1M rows of all-MiniLM-L6-v2 would take hours on a small CPU, so this part uses a TINY RANDOM BERT (1 layer,
hidden 32, max_length 32, the MiniLM tokenizer) exported by `engine export`: the pipeline (read, validate, tokenize, batch, write,
ledger) is the same; only the model is cheap. Texts are the real pydoc paragraphs, cycled with the row number appended
so no two are equal. Each run is a fresh `python -m engine embed` subprocess; its peak RSS is its own VmHWM, read at exit.

Throughput: the real all-MiniLM-L6-v2 export on real paragraphs, one warm Embedder, interleaved runs of
(a) Embedder.encode(texts) on the texts in memory and (b) run_embed_job on the same texts in a jsonl file (scan, read,
validate, write parquet, ledger, _SUCCESS), 3 times each; medians.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]


def tiny_bert_export(work: Path) -> Path:
    """A random 1-layer BERT (hidden 32, 32 tokens) with the bundled MiniLM tokenizer, exported to an export folder."""
    from export import ExportOptions, export_model

    src = tiny_bert_folder(work / "tiny-bert")
    out = work / "tiny-bert-export"
    export_model(ExportOptions(model=str(src), out_dir=str(out), pooling="mean", normalize=True, max_length=32,
                               overwrite=True), log=lambda _m: None)
    return out


def tiny_bert_folder(src: Path) -> Path:
    """A random 1-layer BERT (hidden 32) with the bundled MiniLM tokenizer, in Hugging Face layout."""
    import torch
    from transformers import BertConfig, BertModel

    from benchmarks.corpus import bundled_model_path

    src.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (bundled_model_path() / name).exists():
            shutil.copy(bundled_model_path() / name, src / name)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=512)
    BertModel(cfg, add_pooling_layer=False).save_pretrained(src)
    return src


def write_corpus(path: Path, rows: int) -> Path:
    """rows real paragraphs (cycled, each tagged with its row number) as parquet in 64k-row groups."""
    from benchmarks.corpus import pydoc_paragraphs

    paras = pydoc_paragraphs()
    schema = pa.schema([("text", pa.string())])
    with pq.ParquetWriter(path, schema) as w:
        for start in range(0, rows, 65536):
            n = min(65536, rows - start)
            w.write_table(pa.table({"text": [f"{paras[i % len(paras)]} ({i})" for i in range(start, start + n)]}, schema=schema))
    return path


# Runs `python -m engine ARGS` and, at exit, writes the process's own VmHWM (peak RSS) to $EMBED_RSS_HWM. Not
# ru_maxrss from wait4: Linux keeps maxrss across fork + exec, so a child forked from this (large) benchmark process
# would report this process's size.
_WRAPPER = """
import atexit, os, runpy, sys
def _hwm():
    line = next(x for x in open('/proc/self/status') if x.startswith('VmHWM:'))
    open(os.environ['EMBED_RSS_HWM'], 'w').write(line.split()[1])
atexit.register(_hwm)
sys.argv = ['engine'] + sys.argv[1:]
runpy.run_module('engine', run_name='__main__')
"""


def run_measured(args: list[str]) -> tuple[float, int, int, list[tuple[float, int]]]:
    """Run `python -m engine ARGS`; (wall seconds, peak RSS MiB, exit code, [(seconds, VmRSS MiB)] every 0.5 s)."""
    started = time.perf_counter()
    log = tempfile.TemporaryFile()
    hwm_file = Path(tempfile.mkstemp(prefix="embed-rss-hwm-")[1])
    env = dict(os.environ, PYTHONPATH=str(ROOT), EMBED_RSS_HWM=str(hwm_file))
    proc = subprocess.Popen([sys.executable, "-c", _WRAPPER, *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    samples = []
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            line = next(x for x in Path(f"/proc/{proc.pid}/status").read_text().splitlines() if x.startswith("VmRSS:"))
            samples.append((round(time.perf_counter() - started, 1), int(line.split()[1]) // 1024))
        except (OSError, StopIteration):
            pass
        time.sleep(0.5)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        log.seek(0)
        sys.stdout.write(log.read().decode(errors="replace"))
    peak = int(hwm_file.read_text() or 0) // 1024
    hwm_file.unlink()
    return wall, peak, proc.returncode, samples


def rss_benchmark(work: Path, sizes: tuple[int, ...]) -> list[dict]:
    print("RSS: TINY RANDOM BERT (1 layer, hidden 32, MiniLM tokenizer, max_length 32), not a real model; "
          "real pydoc paragraphs cycled", flush=True)
    model = tiny_bert_export(work)
    results = []
    for n in sizes:
        src = write_corpus(work / f"rows-{n}.parquet", n)
        out = work / f"out-{n}"
        wall, rss, code, samples = run_measured(["embed", str(src), str(out), "--model", str(model), "--device", "cpu",
                                                 "--quiet", "--overwrite"])
        success = json.loads((out / "_SUCCESS").read_text()) if code == 0 else {}
        row = {"rows": n, "peak_rss_mib": rss, "wall_s": round(wall, 1), "rows_per_s": round(n / wall),
               "parts": success.get("parts"), "input_mib": round(src.stat().st_size / 2**20, 1),
               "output_mib": round(sum(p.stat().st_size for p in out.glob("part-*")) / 2**20, 1), "exit": code}
        # RSS over the run, by tenths of the wall time: flat after start-up means memory does not grow with rows.
        tenths = [max((r for t, r in samples if k * wall / 10 <= t < (k + 1) * wall / 10), default=0) for k in range(10)]
        row["rss_by_tenth_mib"] = tenths
        results.append(row)
        print(f"  {n:>9,} rows: peak RSS {rss:,} MiB, wall {wall:.1f}s ({n / wall:,.0f} rows/s), {row['parts']} parts, "
              f"input {row['input_mib']} MiB, output {row['output_mib']} MiB", flush=True)
        print(f"             RSS by tenth of the run (MiB): {tenths}", flush=True)
        shutil.rmtree(out)
        src.unlink()
    return results


def throughput_benchmark(work: Path, n: int, repeats: int) -> dict:
    from benchmarks.build_demo_corpus import demo_records
    from engine import Embedder, EmbedderConfig
    from engine.bulk.job import EmbedJob
    from engine.bulk.run import run_embed_job
    from engine.bulk.progress import Progress

    records = demo_records()[:n]
    texts = [r["text"] for r in records]
    src = work / "throughput.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    cfg = EmbedderConfig(device="cpu")
    embedder = Embedder.from_config(cfg)
    embedder.encode(texts[:64])  # warm-up
    bare, engine, encode_inside = [], [], []
    for _ in range(repeats):
        t = time.perf_counter()
        embedder.encode(texts)
        bare.append(time.perf_counter() - t)
        out = work / "throughput-out"
        job = EmbedJob(input=str(src), output=str(out), id_column="id", keep_columns=("topic",), overwrite=True,
                       quiet=True, embedder=cfg)
        t = time.perf_counter()
        summary = run_embed_job(job, Progress("quiet"), embedder=embedder)
        engine.append(time.perf_counter() - t)
        encode_inside.append(summary.timings["encode"])
    tokens = summary.real_tokens
    b, e = statistics.median(bare), statistics.median(engine)
    result = {"texts": n, "real_tokens": tokens, "bare_encode_s": [round(x, 2) for x in bare],
              "engine_embed_s": [round(x, 2) for x in engine], "bare_rows_per_s": round(n / b, 1),
              "engine_rows_per_s": round(n / e, 1), "engine_tokens_per_s": round(tokens / e),
              "io_overhead_pct": round(100 * (e / b - 1), 1), "encode_inside_engine_s": round(statistics.median(encode_inside), 2)}
    print(f"throughput: all-MiniLM-L6-v2 fp32 CPU, {n:,} real paragraphs ({tokens:,} tokens), medians of {repeats} interleaved runs")
    print(f"  bare Embedder.encode: {b:.2f}s ({n / b:,.1f} rows/s)   runs {result['bare_encode_s']}")
    print(f"  engine embed (jsonl -> parquet): {e:.2f}s ({n / e:,.1f} rows/s)   runs {result['engine_embed_s']}")
    print(f"  I/O cost: {result['io_overhead_pct']:+.1f}% wall time (encode inside the job: {result['encode_inside_engine_s']}s)")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.embed_rss", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rss-only", action="store_true")
    parser.add_argument("--throughput-only", action="store_true")
    parser.add_argument("--sizes", default="100000,1000000", help="rows per RSS run, comma-separated")
    parser.add_argument("--texts", type=int, default=1000, help="texts in the throughput comparison")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="embed-rss-") as tmp:
        work = Path(tmp)
        if not args.throughput_only:
            results["rss"] = rss_benchmark(work, tuple(int(s) for s in args.sizes.split(",")))
        if not args.rss_only:
            results["throughput"] = throughput_benchmark(work, args.texts, args.repeats)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
