"""Markdown formatting of the report's numbers and tables, and the per-section speed tables."""
from __future__ import annotations

import math

from .records import select

SPEED_SECTIONS = {
    "speed": "Speed: all-MiniLM-L6-v2, mixed corpus",
    "length": "Speed by text length: all-MiniLM-L6-v2",
    "budget": "Engine speed by batch token budget: all-MiniLM-L6-v2",
    "bert": "Speed: BERT-base (random weights)",
}


def fmt_num(x, digits: int = 0) -> str:
    """A number with thousands separators and `digits` decimals; a dash for None, NaN or inf."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def fmt_range(stat: dict, digits: int = 0) -> str:
    """median (min–max) of a stat dict; a dash when empty."""
    if not stat:
        return "–"
    return f"{fmt_num(stat['median'], digits)} ({fmt_num(stat['min'], digits)}–{fmt_num(stat['max'], digits)})"


def fmt_pct(x, digits: int = 1) -> str:
    """A share as a percentage; a dash for None."""
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table, one string per line."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out



def utilization(r: dict, gemm: dict) -> dict:
    """Useful matmul FLOP/s of a speed record over the machine's best measured rate for its precision (median, min, max)."""
    key = r.get("rate_key")
    rate = (gemm or {}).get(key)
    if not rate or not r.get("seconds") or not r.get("useful_gflop"):
        return {}
    rate_gflops = rate * 1000 if key.endswith("tflops") else rate
    s = r["seconds"]
    f = r["useful_gflop"] / rate_gflops
    return {"median": f / s["median"], "min": f / s["max"], "max": f / s["min"]}


def _outside(r: dict) -> str:
    """Engine rows: share of wall time outside onnxruntime, and that time per batch."""
    if r.get("outside_session_share") is None:
        return "–"
    return f"{fmt_pct(r['outside_session_share'])} ({r['outside_session_ms_per_batch']:.2f})"


def speed_table(records: list[dict], section: str) -> list[str]:
    """The markdown table of one speed section; empty when the section has no records."""
    rows_ = select(records, "speed", section=section)
    gemm = (select(records, "gemm") or [{}])[-1]
    if not rows_:
        return []
    gpu = any(r.get("device") == "cuda" for r in rows_)
    baseline = next((r.get("baseline") for r in rows_ if r.get("baseline")), None)
    header = ["corpus", "system", "texts", "real tok/s median (min–max)", "texts/s median (min–max)", "pad overhead",
              f"x {baseline}" if baseline else "ratio", "utilization", "outside onnxruntime (ms/batch)", "peak RSS MiB"]
    if section == "budget":
        header[1] = "budget (tokens)"
    if gpu:
        header.append("GPU MiB (process / torch peak)")
    rows = []
    for r in rows_:
        name = str(r.get("budget")) if section == "budget" else r["system"]
        texts = f"{r['texts']:,}" + (f" (1 in {r['stride']})" if r.get("stride", 1) > 1 else "")
        row = [r["corpus"], name, texts, fmt_range(r["tokens_per_s"]), fmt_range(r["texts_per_s"], 1), fmt_pct(r["pad_overhead"]),
               f"{r['ratio_vs_baseline']:.2f}x" if r.get("ratio_vs_baseline") else "–",
               fmt_pct(utilization(r, gemm).get("median")), _outside(r), fmt_num(r.get("rss_peak_mb"))]
        if gpu:
            proc = fmt_num(r.get("gpu_process_mb")) if r.get("gpu_process_mb") else (
                f"+{fmt_num(r['gpu_device_growth_mb'])} (device)" if r.get("gpu_device_growth_mb") else "–")
            row.append(f"{proc} / {fmt_num(r.get('gpu_torch_peak_mb'))}")
        rows.append(row)
    if section == "speed":  # systems that could not run here keep their row, saying why (sentence-transformers' optimum backends)
        ran = {r["system"] for r in rows_}
        for s in select(records, "skipped"):
            if s["what"] not in ran and "not installed" in s.get("why", "") and s["what"].startswith(("sentence-transformers", "engine")):
                rows.append([rows_[0]["corpus"], s["what"], s["why"]] + ["–"] * (len(header) - 3))
                ran.add(s["what"])
    return md_table(header, rows)


def precision_table(records: list[dict]) -> list[str]:
    """One row per engine precision: speed on the mixed corpus (x engine fp32), and what it costs in quality against
    PyTorch fp32 on the retrieval corpus (cosines, top-10 neighbour overlap). Empty without both sections."""
    base = next(iter(select(records, "speed", section="speed", system="engine fp32")), None)
    rows = []
    for r in select(records, "speed", section="speed"):
        if r.get("kind") != "engine":
            continue
        p = next(iter(select(records, "parity", output="sentence_embedding", system=r["system"])), None)
        n = next(iter(select(records, "retrieval", system=r["system"])), None)
        label = r["precision"] if r["system"] == f"engine {r['precision']}" else r["system"].removeprefix("engine ")
        rows.append([label, fmt_num(r["tokens_per_s"]["median"]),
                     f"{r['tokens_per_s']['median'] / base['tokens_per_s']['median']:.2f}x" if base else "–",
                     f"{p['cos_mean']:.5f}" if p else "–", f"{p['cos_min']:.4f}" if p else "–",
                     fmt_pct(n["overlap_mean"], 1) if n else "–"])
    if not rows:
        return []
    return md_table(["precision", "real tok/s (mixed)", "x engine fp32", "cosine mean", "cosine min", "top-10 overlap"], rows)
