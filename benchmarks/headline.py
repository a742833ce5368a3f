"""The report's headline: the issues' questions, what was measured and whether each target was met."""
from __future__ import annotations

from .records import select
from .tables import fmt_num, fmt_pct, utilization

# CPU targets from the speed issues (round 2: int8 that keeps retrieval; fp32 near the GEMM rate; short texts).
CPU_TARGETS = {"fp32_tokens_per_s": 4500, "vs_st": 1.45, "pad_overhead": 0.05, "int8_vs_fp32": 1.8, "int8_cos": 0.997,
               "int8_min_cos": 0.98, "int8_overlap": 0.97, "fp32_utilization": 0.80, "short_vs_st": 1.8}
GPU_TARGETS = {"vs_ref": 1.5, "fp16_cos": 0.9999, "utilization": 0.40}


def _speed(records, section, system, corpus=None) -> dict | None:
    for r in select(records, "speed", section=section, system=system):
        if corpus is None or r.get("corpus") == corpus:
            return r
    return None


def _met(value, target, higher=True) -> str:
    if value is None:
        return "not measured"
    ok = value >= target if higher else value <= target
    return "yes" if ok else "**no**"


def headline(records: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Rows of the headline table: the issues' questions, measured values, targets."""
    meta = (select(records, "meta") or [{}])[0]
    gemm = (select(records, "gemm") or [{}])[-1]
    rows = []
    if meta.get("device") == "cuda":
        for model, section in (("BERT-base", "bert"), ("all-MiniLM-L6-v2", "speed")):
            corpora = sorted({r["corpus"] for r in select(records, "speed", section=section)})
            for corpus in corpora:
                e, ref = _speed(records, section, "engine fp16", corpus), _speed(records, section, "hf sdpa sorted", corpus)
                if e and ref:
                    ratio = e["tokens_per_s"]["median"] / ref["tokens_per_s"]["median"]
                    rows.append([f"{model} ({corpus}): engine fp16 vs torch fp16 SDPA sorted batches, real tokens/s",
                                 f"{ratio:.2f}x ({fmt_num(e['tokens_per_s']['median'])} vs {fmt_num(ref['tokens_per_s']['median'])})",
                                 f">= {GPU_TARGETS['vs_ref']}x", _met(ratio, GPU_TARGETS["vs_ref"])])
                if e and utilization(e, gemm):
                    u = utilization(e, gemm)["median"]
                    rows.append([f"{model} ({corpus}): engine fp16 share of measured fp16 matmul rate", fmt_pct(u),
                                 f">= {fmt_pct(GPU_TARGETS['utilization'], 0)}", _met(u, GPU_TARGETS["utilization"])])
        for p in select(records, "parity", output="sentence_embedding", system="engine fp16"):
            rows.append(["engine fp16 pooled embedding, mean cosine vs torch fp32", f"{p['cos_mean']:.6f} (min {p['cos_min']:.6f})",
                         f">= {GPU_TARGETS['fp16_cos']}", _met(p["cos_mean"], GPU_TARGETS["fp16_cos"])])
        return ["question", "measured", "target", "met"], rows
    e32 = _speed(records, "speed", "engine fp32")
    st = _speed(records, "speed", "sentence-transformers")
    if e32:
        tps = e32["tokens_per_s"]["median"]
        rows.append(["engine fp32 real tokens/s (all-MiniLM-L6-v2, mixed, max_length 256, 2 threads)", fmt_num(tps),
                     f">= {CPU_TARGETS['fp32_tokens_per_s']:,}", _met(tps, CPU_TARGETS["fp32_tokens_per_s"])])
        if st:
            ratio = tps / st["tokens_per_s"]["median"]
            rows.append(["engine fp32 vs sentence-transformers (torch), real tokens/s", f"{ratio:.2f}x",
                         f">= {CPU_TARGETS['vs_st']}x", _met(ratio, CPU_TARGETS["vs_st"])])
        rows.append(["engine padded-token overhead (mixed corpus)", fmt_pct(e32["pad_overhead"]),
                     f"<= {fmt_pct(CPU_TARGETS['pad_overhead'], 0)}", _met(e32["pad_overhead"], CPU_TARGETS["pad_overhead"], higher=False)])
        if utilization(e32, gemm):
            u = utilization(e32, gemm)["median"]
            rows.append(["engine fp32 share of the measured fp32 GEMM rate", fmt_pct(u),
                         f">= {fmt_pct(CPU_TARGETS['fp32_utilization'], 0)}", _met(u, CPU_TARGETS["fp32_utilization"])])
        if e32.get("outside_session_share") is not None:
            rows.append(["engine fp32 time outside onnxruntime (tokenize, pad, scatter, postprocess), share of wall time",
                         f"{fmt_pct(e32['outside_session_share'])} ({e32['outside_session_ms_per_batch']:.2f} ms per batch)", "–", "–"])
    short32, short_st = _speed(records, "length", "engine fp32", "short"), _speed(records, "length", "sentence-transformers", "short")
    if short32 and short_st:
        ratio = short32["tokens_per_s"]["median"] / short_st["tokens_per_s"]["median"]
        rows.append(["short texts: engine fp32 vs sentence-transformers, real tokens/s", f"{ratio:.2f}x",
                     f">= {CPU_TARGETS['short_vs_st']}x", _met(ratio, CPU_TARGETS["short_vs_st"])])
    for name in ("engine int8", "engine int8-fast"):
        e8 = _speed(records, "speed", name)
        if e32 and e8:
            ratio = e8["tokens_per_s"]["median"] / e32["tokens_per_s"]["median"]
            rows.append([f"{name} vs engine fp32, real tokens/s", f"{ratio:.2f}x", f">= {CPU_TARGETS['int8_vs_fp32']}x",
                         _met(ratio, CPU_TARGETS["int8_vs_fp32"])])
    for p in select(records, "parity", output="sentence_embedding"):
        int8 = str(p["precision"]).startswith("int8")
        rows.append([f"{p['system']} pooled embedding, mean cosine vs {p['against']}", f"{p['cos_mean']:.6f}",
                     f">= {CPU_TARGETS['int8_cos']}" if int8 else "–", _met(p["cos_mean"], CPU_TARGETS["int8_cos"]) if int8 else "–"])
        rows.append([f"{p['system']} pooled embedding, min cosine vs {p['against']}", f"{p['cos_min']:.6f}",
                     f">= {CPU_TARGETS['int8_min_cos']}" if int8 else "–", _met(p["cos_min"], CPU_TARGETS["int8_min_cos"]) if int8 else "–"])
    for r in select(records, "retrieval"):
        int8 = "int8" in r["system"]
        rows.append([f"{r['system']}: top-{r['k']} neighbour overlap with {r['against']} ({r['n']:,} texts)",
                     f"{fmt_pct(r['overlap_mean'], 2)} (min {fmt_pct(r['overlap_min'], 0)})",
                     f">= {fmt_pct(CPU_TARGETS['int8_overlap'], 0)}" if int8 else "–",
                     _met(r["overlap_mean"], CPU_TARGETS["int8_overlap"]) if int8 else "–"])
    return ["question", "measured", "target", "met"], rows
