"""Round-robin timing of several systems on the same texts, and the per-system 'speed' summaries of those runs."""
from __future__ import annotations

import statistics

import numpy as np

from . import corpus as C
from .gemm import corpus_flops
from .lineup import ref_label
from .records import Recorder
from .systems import SystemConfig
from .worker import WorkerError


def interleave(rec: Recorder, workers: dict, jobs: dict, repeats: int, meta: dict, log, budget_for=None) -> list[dict]:
    """Run every system's job round-robin, `repeats` times (start rotated each round); warm up in the first round.

    jobs: system name -> texts. Records one 'run' per system per repeat.
    """
    names = [n for n in jobs if n in workers]
    runs = []
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)] if names else []
        for name in order:
            try:
                m, _ = workers[name].run(jobs[name], warm_up=(r == 0))
            except WorkerError as err:
                rec.skip(f"{meta.get('section')}/{meta.get('corpus')}/{name} repeat {r}", str(err).strip().splitlines()[-1])
                continue
            run = rec.add({"type": "run", **meta, "system": name, "repeat": r, **m,
                           **({"budget": budget_for(name)} if budget_for else {})})
            runs.append(run)
            log(f"  {meta.get('corpus')} {name:<24} r{r}: {m['texts'] / m['seconds']:8.1f} texts/s "
                f"{m['real_tokens'] / m['seconds']:9.0f} real tok/s  pad {1 - m['real_tokens'] / max(m['padded_tokens'], 1):5.1%}")
    return runs


def _outside_session(rs: list[dict]) -> dict:
    """engine runs: the share of wall time spent outside onnxruntime (tokenize, pad, scatter, postprocess, Python), and
    that time per batch in ms (medians over the repeats)."""
    rs = [r for r in rs if r.get("session_seconds") is not None and r.get("batches")]
    if not rs:
        return {}
    outside = [r["seconds"] - r["session_seconds"] for r in rs]
    return {"outside_session_share": statistics.median(o / r["seconds"] for o, r in zip(outside, rs)),
            "outside_session_ms_per_batch": statistics.median(1000 * o / r["batches"] for o, r in zip(outside, rs)),
            "batches": rs[0]["batches"]}


def _stat(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)} if xs else {}


def summarize(rec: Recorder, runs: list[dict], meta: dict, cfgs: dict, lengths: dict, model_cfg: dict,
              baseline: str | None, key: str = "system", extra: dict | None = None) -> list[dict]:
    """One 'speed' record per group of runs: medians with min-max, ratio to the baseline, utilization, RSS.

    extra: group name -> fields added to that group's record.
    """
    groups: dict = {}
    for r in runs:
        groups.setdefault(r[key], []).append(r)
    out = []
    base_tps = None
    if baseline and baseline in groups:
        base_tps = statistics.median(r["real_tokens"] / r["seconds"] for r in groups[baseline])
    for name, rs in groups.items():
        system = rs[0]["system"]
        cfg = cfgs[system]
        tps = [r["real_tokens"] / r["seconds"] for r in rs]
        xps = [r["texts"] / r["seconds"] for r in rs]
        flops = corpus_flops(lengths[name], model_cfg)
        record = {
            "type": "speed", **meta, "system": system, "label": ref_label(cfg), "kind": cfg.kind, "precision": cfg.precision,
            "device": cfg.device, "repeats": len(rs), "texts": rs[0]["texts"], "real_tokens": rs[0]["real_tokens"],
            "padded_tokens": rs[0]["padded_tokens"], "pad_overhead": 1 - rs[0]["real_tokens"] / max(rs[0]["padded_tokens"], 1),
            "texts_per_s": _stat(xps), "tokens_per_s": _stat(tps), "seconds": _stat([r["seconds"] for r in rs]),
            "useful_gflop": flops / 1e9, "rate_key": rate_key(cfg),
            "ratio_vs_baseline": (statistics.median(tps) / base_tps) if base_tps else None, "baseline": baseline,
            "rss_peak_mb": max(r.get("rss_peak_mb", 0) for r in rs), "rss_mb_after": [r.get("rss_mb") for r in rs],
            "gpu_process_mb": max((r.get("gpu_process_mb") or 0 for r in rs), default=None) or None,
            "gpu_torch_peak_mb": max((r.get("gpu_torch_peak_mb") or 0 for r in rs), default=None) or None,
            "gpu_device_growth_mb": max((r.get("gpu_device_growth_mb") or 0 for r in rs), default=None) or None,
            **_outside_session(rs),
            **((extra or {}).get(name) or {}),
        }
        if "budget" in rs[0]:
            record["budget"] = rs[0]["budget"]
        out.append(rec.add(record))
    return out


def rate_key(cfg: SystemConfig) -> str:
    """Which measured matmul rate a system's utilization is taken against (the report divides by the best one seen)."""
    if cfg.device == "cuda":
        return "gpu_fp16_tflops" if cfg.precision == "fp16" else "gpu_fp32_tflops"
    if cfg.precision == "bf16":
        return "bf16_gflops"  # OpenVINO's bf16 (AMX / AVX512-BF16) matmul rate, measured where the CPU has the units
    return "fp32_gflops"  # int8 too: there is no int8 GEMM reference here, so int8 can pass 100%


def real_lengths(texts: list[str], max_length: int) -> np.ndarray:
    """Token count of each text after truncation to max_length."""
    return np.minimum(C.token_lengths(texts), max_length)
