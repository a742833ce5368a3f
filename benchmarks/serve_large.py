"""Where the time of one large request goes: `python -m benchmarks.serve_large [--texts 1600]`.

Starts `engine serve` (the bundled all-MiniLM-L6-v2, or --model), sends the first N pydoc paragraphs as one TEI
`POST /embed` (what chroma's HuggingFaceEmbeddingServer, litellm and langchain-huggingface send for a whole list), and
splits its wall time with the server's own metrics: queueing, inference (and in how many batches,
with how much padding), JSON encoding, transfer and the client's JSON decoding. Offline `Embedder.encode` of the same
texts is measured beside it. --root runs another checkout's server (a before/after comparison).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUMS = ("engine_inference_seconds_sum", "engine_inference_seconds_count", "engine_queue_seconds_sum",
        "engine_json_seconds_sum", "engine_batch_real_tokens_total", "engine_batch_padded_tokens_sum",
        "engine_request_seconds_sum")


def _metrics(url: str) -> dict:
    import httpx

    out = {}
    for line in httpx.get(url + "/metrics", timeout=30).text.splitlines():
        key, _, value = line.rpartition(" ")
        name = key.split("{")[0]
        if name in SUMS:
            out[name] = out.get(name, 0.0) + float(value)
    return out


def measure(url: str, texts: list[str], read_timeout: float = 5.0) -> dict:
    import httpx
    import orjson

    body = orjson.dumps({"inputs": texts})
    before = _metrics(url)
    t0 = time.perf_counter()
    with httpx.stream("POST", url + "/embed", content=body, headers={"content-type": "application/json"},
                      timeout=httpx.Timeout(5.0, read=read_timeout)) as r:  # httpx's default: 5 s between reads
        first = time.perf_counter() - t0
        data = r.read()
    wall = time.perf_counter() - t0
    t = time.perf_counter()
    vectors = json.loads(data)  # what chroma's client does (httpx .json())
    decode = time.perf_counter() - t
    d = {k: v - before.get(k, 0.0) for k, v in _metrics(url).items()}
    return {"texts": len(texts), "status": r.status_code, "wall_s": wall, "headers_after_s": first,
            "client_json_decode_s": decode, "vectors": len(vectors), "response_mb": len(data) / 1e6,
            "inference_s": d["engine_inference_seconds_sum"], "batches": int(d["engine_inference_seconds_count"]),
            "queue_s": d["engine_queue_seconds_sum"], "json_encode_s": d["engine_json_seconds_sum"],
            "real_tokens": int(d["engine_batch_real_tokens_total"]), "padded_tokens": int(d["engine_batch_padded_tokens_sum"])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.serve_large", description=__doc__.split("\n\n")[0])
    p.add_argument("--texts", type=int, default=1600)
    p.add_argument("--model", default=None, help="an export folder (default: the bundled all-MiniLM-L6-v2)")
    p.add_argument("--root", type=Path, default=ROOT, help="the checkout whose engine serve runs (default: this one)")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--read-timeout", type=float, default=5.0, help="the client's read timeout (httpx's default: 5 s)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks.corpus import pydoc_paragraphs
    from engine import Embedder

    texts = pydoc_paragraphs()[: args.texts]
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"serve-large-{os.getpid()}.log"
    env = dict(os.environ, PYTHONPATH=str(args.root))
    cmd = [sys.executable, "-m", "engine", "serve", "--port", "0", "--device", "cpu"] + (["--model", args.model] if args.model else [])
    proc = subprocess.Popen(cmd, cwd=args.root, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        while not (m := re.search(r"ready on (http://\S+)", log.read_text(errors="replace"))):
            if proc.poll() is not None:
                raise RuntimeError(log.read_text(errors="replace"))
            time.sleep(0.2)
        url = m.group(1)
        emb = Embedder(args.model, device="cpu")
        emb.encode(texts[:64])
        for _ in range(args.repeat):
            t = time.perf_counter()
            emb.encode(texts)
            offline = time.perf_counter() - t
            rec = measure(url, texts, args.read_timeout) | {"offline_encode_s": offline, "loadavg": os.getloadavg()[0], "root": str(args.root)}
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in rec.items()}), flush=True)
    finally:
        proc.terminate()
        proc.wait(60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
