"""The serve benchmark: `engine serve` under 1, 8 and 64 concurrent clients against offline Embedder.encode on the
same texts, and against sentence-transformers behind the same HTTP stack (benchmarks.serve_naive), interleaved in
one run; plus 1-client short-text latency against a bare encode, and a 1-text request during a 10,000-text one.

python -m benchmarks.serve_load [--seconds 60] [--out benchmarks/results/<machine>/]  (writes serve.jsonl, serve.md)
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from . import corpus as C
from .machine import cpu_model, machine_slug
from .serve_report import write_report
from .worker import proc_status_mb

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (1, 8, 64)
OFFLINE_TEXTS = 800  # the first texts of the corpus; the load generator sends slices of the same corpus


class Proc:
    """A server subprocess (engine serve or the naive one) and its URL once it prints its ready line."""

    def __init__(self, name: str, cmd: list[str], log: Path) -> None:
        self.name, self.log = name, log
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while not (m := re.search(r"ready on (http://[^\s)]+)", log.read_text(errors="replace"))):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        self.url = m.group(1)

    def rss_mb(self) -> dict:
        return proc_status_mb(self.proc.pid)

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(60)


def scrape(url: str) -> dict:
    """Sums of the engine's timing and token metrics (empty for the naive server)."""
    import httpx

    try:
        text = httpx.get(url + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    out = {}
    for line in text.splitlines():
        for name in ("engine_json_seconds_sum", "engine_inference_seconds_sum", "engine_batch_padded_tokens_sum",
                     "engine_batch_real_tokens_total", "engine_batch_sequences_count"):
            if line.startswith(name + " "):
                out[name] = float(line.split()[-1])
    return out


async def load(url: str, texts: list[str], clients: int, seconds: float, proc: Proc, seed: int) -> dict:
    """`clients` concurrent clients, each sending requests of 1..32 consecutive corpus texts for `seconds`."""
    import httpx
    import orjson

    rng = np.random.default_rng(seed)
    latencies, tokens, errors, rss = [], [0], [0], []
    stop_at = time.perf_counter() + seconds

    async def client(c: httpx.AsyncClient) -> None:
        while time.perf_counter() < stop_at:
            k, start = int(rng.integers(1, 33)), int(rng.integers(0, len(texts) - 32))
            body = orjson.dumps({"model": "m", "input": texts[start:start + k], "encoding_format": "float"})
            t = time.perf_counter()
            try:
                r = await c.post(url + "/v1/embeddings", content=body, headers={"content-type": "application/json"})
                ok = r.status_code == 200 and len(orjson.loads(r.content)["data"]) == k
            except httpx.HTTPError:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - t)
                tokens[0] += orjson.loads(r.content)["usage"]["prompt_tokens"]
            else:
                errors[0] += 1

    async def sample_rss() -> None:
        while time.perf_counter() < stop_at:
            rss.append(proc.rss_mb().get("rss_mb", 0))
            await asyncio.sleep(1)

    before = scrape(url)
    started = time.perf_counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=300, limits=limits) as c:
        await asyncio.gather(sample_rss(), *(client(c) for _ in range(clients)))
    wall = time.perf_counter() - started
    after = scrape(url)
    lat = np.asarray(latencies) * 1000
    delta = {k: after[k] - before.get(k, 0) for k in after}
    return {"clients": clients, "seconds": round(wall, 1), "requests": len(latencies), "errors": errors[0],
            "tokens": tokens[0], "tokens_per_s": tokens[0] / wall, "requests_per_s": len(latencies) / wall,
            "p50_ms": _pct(lat, 50), "p95_ms": _pct(lat, 95), "p99_ms": _pct(lat, 99),
            "rss_first_mb": rss[0] if rss else None, "rss_last_mb": rss[-1] if rss else None,
            "rss_peak_mb": max(rss) if rss else None,
            "json_share_of_wall": delta.get("engine_json_seconds_sum", 0) / wall if delta else None,
            "json_ms_per_request": 1000 * delta.get("engine_json_seconds_sum", 0) / max(len(latencies), 1) if delta else None,
            "pad_share": 1 - delta["engine_batch_real_tokens_total"] / delta["engine_batch_padded_tokens_sum"]
            if delta.get("engine_batch_padded_tokens_sum") else None}


def _pct(a: np.ndarray, q: float) -> float | None:
    return float(np.percentile(a, q)) if len(a) else None


def offline_rate(embedder, texts: list[str]) -> float:
    """Real tokens/s of Embedder.encode on texts (tokens counted as the server counts them: truncated, specials in)."""
    tokens = sum(len(e.ids) for e in embedder.rust_tokenizer.encode_batch(texts))
    t = time.perf_counter()
    embedder.encode(texts)
    return tokens / (time.perf_counter() - t)


def short_latency(url: str, embedder, shorts: list[str], n: int) -> dict:
    """1 client, 1 short text per request: server p50 against a bare encode of the same text, in alternating blocks."""
    import httpx

    served, bare = [], []
    with httpx.Client(timeout=60) as c:
        for i in range(n):
            text = shorts[i % len(shorts)]
            t = time.perf_counter()
            r = c.post(url + "/v1/embeddings", json={"model": "m", "input": text, "encoding_format": "float"})
            served.append(time.perf_counter() - t)
            assert r.status_code == 200
            t = time.perf_counter()
            embedder.encode([text])
            bare.append(time.perf_counter() - t)
    s, b = np.median(served) * 1000, np.median(bare) * 1000
    return {"requests": n, "served_p50_ms": float(s), "bare_encode_p50_ms": float(b), "ratio": float(s / b)}


async def fairness(url: str, big: list[str], small: str, seconds: float) -> dict:
    """One request of len(big) texts; after 2 s, 1-text requests one after another for `seconds`; then hang up."""
    import httpx

    async with httpx.AsyncClient(timeout=600) as c:
        t0 = time.perf_counter()
        big_task = asyncio.ensure_future(c.post(url + "/v1/embeddings", json={"model": "m", "input": big}))
        await asyncio.sleep(2)
        lat, stop_at = [], time.perf_counter() + seconds
        async with httpx.AsyncClient(timeout=600) as c2:
            while time.perf_counter() < stop_at:
                t = time.perf_counter()
                r = await c2.post(url + "/v1/embeddings", json={"model": "m", "input": small})
                assert r.status_code == 200
                lat.append(time.perf_counter() - t)
        big_done = big_task.done()
        big_task.cancel()
    lat_ms = np.asarray(lat) * 1000
    return {"big_texts": len(big), "small_requests": len(lat), "small_p50_ms": _pct(lat_ms, 50),
            "small_max_ms": float(lat_ms.max()), "big_finished_meanwhile": big_done,
            "seconds_since_big_sent": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.serve_load", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60, help="load per level and system (default 60)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads per system (default 2)")
    p.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/<machine>/")
    p.add_argument("--no-naive", action="store_true", help="skip the sentence-transformers server")
    args = p.parse_args(argv)
    out = args.out or ROOT / "benchmarks" / "results" / machine_slug("cpu")
    out.mkdir(parents=True, exist_ok=True)
    from engine import Embedder

    embedder = Embedder(device="cpu", threads=args.threads)  # the bundled all-MiniLM-L6-v2, exported on first use
    texts = C.mixed_texts(3000)
    logs = Path(os.environ.get("TMPDIR", "/tmp"))
    engine = Proc("engine", [sys.executable, "-m", "engine", "serve", "--port", "0", "--device", "cpu", "--threads",
                             str(args.threads), "--max-inputs", "10000", "--max-queued-tokens", str(2**22),
                             "--max-request-bytes", str(64 * 2**20)], logs / "serve-bench-engine.log")
    systems = [engine]
    if not args.no_naive:
        systems.append(Proc("naive", [sys.executable, "-m", "benchmarks.serve_naive", "--model", str(C.bundled_model_path()),
                                      "--threads", str(args.threads)], logs / "serve-bench-naive.log"))
    flags = sorted(set(re.findall(r"\b(avx512\w*|avx2|avx_vnni|amx\w*)\b", Path("/proc/cpuinfo").read_text())))
    records = [{"type": "meta", "cpu": cpu_model(), "cpu_count": os.cpu_count(), "cpu_flags": flags,
                "loadavg_at_start": os.getloadavg(), "seconds_per_level": args.seconds, "threads": args.threads,
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}]
    try:
        offline = [offline_rate(embedder, texts[:OFFLINE_TEXTS])]
        for clients in LEVELS:  # interleaved: offline, engine, naive, offline, ...
            for s in systems:
                r = asyncio.run(load(s.url, texts, clients, args.seconds, s, seed=clients))
                records.append({"type": "load", "system": s.name, **r})
                print(json.dumps(records[-1]), flush=True)
            offline.append(offline_rate(embedder, texts[:OFFLINE_TEXTS]))
            for r in records:
                if r.get("type") == "load" and r["clients"] == clients:
                    r["offline_tokens_per_s"] = float(np.mean(offline[-2:]))
                    r["share_of_offline"] = r["tokens_per_s"] / r["offline_tokens_per_s"]
        records.append({"type": "latency", **short_latency(engine.url, embedder, C.short_texts(200), 300)})
        print(json.dumps(records[-1]), flush=True)
        big = (texts * 4)[:10_000]
        records.append({"type": "fairness", **asyncio.run(fairness(engine.url, big, "a short query", min(args.seconds, 15)))})
        print(json.dumps(records[-1]), flush=True)
        records.append({"type": "rss", "system": "engine", **engine.rss_mb()})
    finally:
        codes = {s.name: s.stop() for s in systems}
    records.append({"type": "exit", **codes})
    (out / "serve.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    write_report(records, out / "serve.md", " ".join(["python -m benchmarks.serve_load", *(argv or sys.argv[1:])]))
    print(out / "serve.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
