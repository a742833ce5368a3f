"""python -m benchmarks.rerank_serve: a reranker served by `engine serve` under 32 concurrent clients against offline
Reranker.predict on the same pairs (issue 25's goal: >= 85% of the offline scoring rate, 0 errors).

The model is the MiniLM stand-in cross-encoder of benchmarks.rerank_table (all-MiniLM-L6-v2's encoder with a random
one-label head), exported once (fp32, max_length 512) into the benchmark cache, or --model (an export or a cross-encoder
folder). Requests are (query, 20 documents): short real queries, documents of mixed length (rerank_table.pairs_for).
Rounds alternate A/B: A scores every request's pairs in one Reranker.predict call in this process, B posts the same
requests to TEI's POST /rerank from --clients concurrent asyncio clients (httpx, one connection each). Pairs/s per round,
medians over rounds, their ratio; an error is a non-200 answer, a transport error, or an answer whose scores differ from
the offline ones by more than 1e-3. The load average is recorded at the start and after every round.

Writes rerank-serve.json and rerank-serve.md to --out (default benchmarks/results/<machine>/).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from .machine import cpu_model, machine_slug
from .rerank_table import cpu_flags, load_average, pairs_for
from .serve_load import ROOT, Proc

TOL = 1e-3  # served against offline scores: the same export and kernels, batched differently


def requests_for(queries: int, docs: int) -> list[tuple[str, list[str]]]:
    """(query, documents) per request, from rerank_table's real pairs."""
    qs, ds, _ = pairs_for(queries, docs)
    return [(q, ds[i * docs:(i + 1) * docs]) for i, q in enumerate(qs)]


def offline_round(reranker, pairs: list[tuple[str, str]]) -> tuple[float, np.ndarray]:
    """Seconds of one Reranker.predict over every pair, and its scores."""
    t = time.perf_counter()
    scores = np.asarray(reranker.predict(pairs), dtype=np.float64)
    return time.perf_counter() - t, scores


async def served_round(url: str, requests: list[tuple[str, list[str]]], want: np.ndarray, clients: int) -> dict:
    """Every request posted once to /rerank by `clients` concurrent clients taking the next request from a shared
    queue; wall seconds, errors, the largest score difference from offline, latencies, this process's CPU seconds."""
    import httpx
    import orjson

    todo = list(enumerate(requests))
    errors, worst, latencies, messages = [0], [0.0], [], []
    docs = len(requests[0][1])

    async def client(c: httpx.AsyncClient) -> None:
        while todo:
            i, (query, documents) = todo.pop(0)
            body = orjson.dumps({"query": query, "texts": documents})
            t = time.perf_counter()
            try:
                r = await c.post(url + "/rerank", content=body, headers={"content-type": "application/json"})
                ok = r.status_code == 200
                if ok:
                    got = np.full(len(documents), np.nan)
                    for x in orjson.loads(r.content):
                        got[x["index"]] = x["score"]
                    diff = float(np.max(np.abs(got - want[i * docs:(i + 1) * docs])))  # nan if a document is missing
                    ok = diff <= TOL
                    worst[0] = max(worst[0], diff) if ok else worst[0]
                    if not ok:
                        messages.append(f"request {i}: scores off offline by {diff}")
                else:
                    messages.append(f"{r.status_code}: {r.text[:200]}")
            except httpx.HTTPError as err:
                ok = False
                messages.append(f"{type(err).__name__}: {err}")
            if ok:
                latencies.append(time.perf_counter() - t)
            else:
                errors[0] += 1

    cpu, started = time.process_time(), time.perf_counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=600, limits=limits) as c:
        await asyncio.gather(*(client(c) for _ in range(clients)))
    wall = time.perf_counter() - started
    lat = np.asarray(latencies) * 1000
    return {"seconds": wall, "errors": errors[0], "max_abs_vs_offline": worst[0], "error_messages": messages[:5],
            "client_cpu_seconds": time.process_time() - cpu,
            "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
            "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None}


def the_model(args) -> Path:
    """--model, or the MiniLM stand-in cross-encoder exported (fp32, max_length 512) into the benchmark cache."""
    if args.model:
        return args.model
    from export import ExportOptions, export_model

    from .models import default_cache
    from .random_cross_encoders import minilm_cross_encoder

    cache = default_cache() / "rerank"
    folder, out = cache / "minilm-cross-encoder", cache / "export-fp32-512"
    if not (folder / "config.json").is_file():
        minilm_cross_encoder(folder)
    if not (out / "manifest.json").is_file():
        export_model(ExportOptions(model=str(folder), out_dir=str(out), precision="fp32", max_length=512, overwrite=True),
                     log=lambda _m: None)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.rerank_serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=64, help="(query, documents) requests per round (default 64)")
    p.add_argument("--docs", type=int, default=20, help="documents per request (default 20)")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    p.add_argument("--rounds", type=int, default=3, help="A/B rounds (default 3)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads of the offline reranker and of the server")
    p.add_argument("--model", type=Path, default=None, help="an export or cross-encoder folder (default: the MiniLM stand-in)")
    p.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/<machine>/")
    p.add_argument("--quick", action="store_true", help="8 requests of 20 documents, 4 clients, 1 round: checks the run")
    p.add_argument("--report-only", action="store_true", help="rewrite rerank-serve.md from --out's rerank-serve.json")
    args = p.parse_args(argv)
    if args.report_only:
        return write(args.out or ROOT / "benchmarks" / "results" / machine_slug("cpu"), **json.loads(
            ((args.out or ROOT / "benchmarks" / "results" / machine_slug("cpu")) / "rerank-serve.json").read_text()))
    if args.quick:
        args.requests, args.clients, args.rounds = 8, 4, 1
    out = args.out or ROOT / "benchmarks" / "results" / machine_slug("cpu")
    from engine import Reranker

    model = the_model(args)
    requests = requests_for(args.requests, args.docs)
    pairs = [(q, d) for q, documents in requests for d in documents]
    reranker = Reranker(model, threads=args.threads, device="cpu")
    real_tokens = sum(len(e.ids) for e in reranker.tokenizer.encode_batch(pairs))
    meta = {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "flags": cpu_flags(), "load_average_start": load_average(),
            "model": str(model), "max_length": reranker.max_length, "precision": reranker.manifest.get("precision"),
            "backend": reranker.backend_choice.name, "requests": len(requests), "docs_per_request": args.docs,
            "pairs": len(pairs), "real_tokens": real_tokens, "clients": args.clients, "rounds": args.rounds,
            "threads": args.threads, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": " ".join(["python -m benchmarks.rerank_serve", *(argv if argv is not None else sys.argv[1:])])}
    log = Path(os.environ.get("TMPDIR", "/tmp")) / "rerank-serve-bench.log"
    server = Proc("engine", [sys.executable, "-m", "engine", "serve", "--model", str(model), "--port", "0",
                             "--device", "cpu", "--threads", str(args.threads)], log)
    rounds = []
    try:
        _, want = offline_round(reranker, pairs[:64])  # warm-up, both sides
        asyncio.run(served_round(server.url, requests[:2], np.asarray(reranker.predict(pairs[:2 * args.docs])),
                                 min(2, args.clients)))
        for r in range(args.rounds):
            seconds, want = offline_round(reranker, pairs)
            rounds.append({"round": r, "system": "offline Reranker.predict", "seconds": seconds, "errors": 0,
                           "load_average": load_average()})
            print(json.dumps(rounds[-1]), flush=True)
            served = asyncio.run(served_round(server.url, requests, want, args.clients))
            rounds.append({"round": r, "system": f"engine serve, {args.clients} clients, POST /rerank", **served,
                           "load_average": load_average()})
            print(json.dumps(rounds[-1]), flush=True)
        meta["server_rss"] = server.rss_mb()
    finally:
        meta["server_exit"] = server.stop()
    for row in rounds:
        row["pairs_per_s"] = len(pairs) / row["seconds"]
        row["tokens_per_s"] = real_tokens / row["seconds"]
    meta["load_average_end"] = load_average()
    return write(out, meta, rounds)


def write(out: Path, meta: dict, rounds: list[dict], summary: dict | None = None) -> int:
    """rerank-serve.json and rerank-serve.md in out (the summary recomputed from the rounds)."""
    summary = summarize(rounds)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rerank-serve.json").write_text(json.dumps({"meta": meta, "summary": summary, "rounds": rounds}, indent=1) + "\n")
    text = report(meta, summary, rounds)
    (out / "rerank-serve.md").write_text(text)
    print(text)
    print(out / "rerank-serve.md")
    return 0


def summarize(rounds: list[dict]) -> dict:
    """Median pairs/s per system, served over offline, errors in all."""
    offline = [r["pairs_per_s"] for r in rounds if r["system"].startswith("offline")]
    served = [r["pairs_per_s"] for r in rounds if not r["system"].startswith("offline")]
    return {"offline_pairs_per_s": statistics.median(offline), "served_pairs_per_s": statistics.median(served),
            "ratio": statistics.median(served) / statistics.median(offline),
            "ratio_per_round": [s / o for o, s in zip(offline, served)],
            "median_round_ratio": statistics.median(s / o for o, s in zip(offline, served)),
            "errors": sum(r["errors"] for r in rounds),
            "max_abs_vs_offline": max((r.get("max_abs_vs_offline", 0) for r in rounds), default=0)}


def report(meta: dict, s: dict, rounds: list[dict]) -> str:
    ratio = s.get("median_round_ratio", s["ratio"])  # each round's served run against the offline run just before it
    goal = "met" if ratio >= 0.85 and s["errors"] == 0 else "not met"
    lines = [f"# Reranker served: {meta['clients']} concurrent clients against offline Reranker.predict", "",
             f"{meta['requests']} requests of (query, {meta['docs_per_request']} documents) per round, {meta['pairs']:,} "
             f"pairs, {meta['real_tokens']:,} real tokens; model `{Path(meta['model']).name}` ({meta['precision']}, "
             f"{meta['backend']}, max_length {meta['max_length']}), {meta['threads']} threads each; {meta['rounds']} "
             f"A/B rounds, medians.", "",
             f"CPU: {meta['cpu']}, {meta['cpu_count']} cores; flags: {meta['flags']}; load average (1, 5, 15 min) at "
             f"the start: {meta['load_average_start']}, at the end: {meta['load_average_end']}.", "",
             "| system | pairs/s (median) | real tok/s | rounds (pairs/s) |", "|---|---:|---:|---|"]
    for name in dict.fromkeys(r["system"] for r in rounds):
        rs = [r for r in rounds if r["system"] == name]
        med = statistics.median(r["pairs_per_s"] for r in rs)
        tok = statistics.median(r["tokens_per_s"] for r in rs)
        lines.append(f"| {name} | {med:,.1f} | {tok:,.0f} | {', '.join(format(r['pairs_per_s'], ',.1f') for r in rs)} |")
    served = [r for r in rounds if not r["system"].startswith("offline")]
    lines += ["", f"- served / offline, median of the rounds' ratios: **{ratio:.1%}** (per round: "
              f"{', '.join(f'{x:.1%}' for x in s['ratio_per_round'])}; ratio of the medians above: {s['ratio']:.1%}); "
              f"goal >= 85% with 0 errors: {goal}",
              f"- errors: {s['errors']} (non-200, transport, or scores off offline by more than {TOL}); largest score "
              f"difference from offline: {s['max_abs_vs_offline']:.2g}",
              f"- request latency at {meta['clients']} clients, p50 / p99: "
              + ", ".join(f"{r['p50_ms']:,.0f} / {r['p99_ms']:,.0f} ms" for r in served if r["p50_ms"] is not None),
              "- the clients run in the benchmark's process on the same cores: "
              + ", ".join(f"{r['client_cpu_seconds']:.1f} s CPU of {r['seconds']:.1f} s" for r in served),
              "- load average after each round: " + "; ".join(f"{r['system'].split(',')[0]} r{r['round']}: "
                                                             f"{r['load_average']}" for r in rounds),
              f"- server RSS at the end: {meta.get('server_rss', {}).get('rss_mb', '?')} MiB; exit code "
              f"{meta['server_exit']}", "", f"command: `{meta['command']}`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
