"""RSS under changing shapes: run N batches of random (B, T) through embed.onnx and sample VmRSS.

    python -m benchmarks.rss_batches [--batches 10000] [--model EXPORT_DIR]
Token ids are random: this measures memory, not speed or quality.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from engine.config import EmbedderConfig
from engine.runtime.backends import open_backend
from engine.runtime.batching import pad_batch
from engine.runtime.models import load_export, resolve_export


def rss_mib() -> float:
    """Resident set size of this process, MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    """Run the batches and print RSS samples as JSON lines."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", type=int, default=10_000)
    ap.add_argument("--max-rows", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--model", default=None, help="export folder (default: the bundled model, exported on first use)")
    args = ap.parse_args()
    folder = resolve_export(EmbedderConfig(model=args.model))
    manifest = load_export(folder)
    backend = open_backend(folder, "embed.onnx", manifest, "cpu", None)
    rng = np.random.default_rng(0)
    every = max(1, args.batches // 20)
    for i in range(args.batches + 1):
        rows, longest = int(rng.integers(1, args.max_rows + 1)), int(rng.integers(1, args.max_tokens + 1))
        ids = [rng.integers(1000, 20000, size=int(rng.integers(1, longest + 1))) for _ in range(rows)]
        backend.run(pad_batch(ids, np.arange(rows), manifest["pad_token_id"]), ["sentence_embedding"])
        if i % every == 0:
            print(json.dumps({"batch": i, "rss_mib": round(rss_mib(), 1)}), flush=True)


if __name__ == "__main__":
    main()
