"""Turn the suite's records (results.jsonl) into report.md and PNG plots."""
from __future__ import annotations

import math
from pathlib import Path

SPEED_SECTIONS = {
    "speed": "Speed: all-MiniLM-L6-v2, mixed corpus",
    "length": "Speed by text length: all-MiniLM-L6-v2",
    "budget": "Engine speed by batch token budget: all-MiniLM-L6-v2",
    "bert": "Speed: BERT-base (random weights)",
}
CPU_TARGETS = {"fp32_tokens_per_s": 4500, "vs_st": 1.45, "pad_overhead": 0.05, "int8_vs_fp32": 1.6, "int8_cos": 0.99}
GPU_TARGETS = {"vs_ref": 1.5, "fp16_cos": 0.9999, "utilization": 0.40}


def _num(x, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def _range(stat: dict, digits: int = 0) -> str:
    if not stat:
        return "–"
    return f"{_num(stat['median'], digits)} ({_num(stat['min'], digits)}–{_num(stat['max'], digits)})"


def _pct(x, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def _of(records: list[dict], type_: str, **match) -> list[dict]:
    return [r for r in records if r.get("type") == type_ and all(r.get(k) == v for k, v in match.items())]


def _speed(records, section, system, corpus=None) -> dict | None:
    for r in _of(records, "speed", section=section, system=system):
        if corpus is None or r.get("corpus") == corpus:
            return r
    return None


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


def _met(value, target, higher=True) -> str:
    if value is None:
        return "not measured"
    ok = value >= target if higher else value <= target
    return "yes" if ok else "**no**"


# ---------------------------------------------------------------------------------------------------------------------


def headline(records: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Rows of the headline table: the issues' questions, measured values, targets."""
    meta = (_of(records, "meta") or [{}])[0]
    gemm = (_of(records, "gemm") or [{}])[-1]
    rows = []
    if meta.get("device") == "cuda":
        for model, section in (("BERT-base", "bert"), ("all-MiniLM-L6-v2", "speed")):
            corpora = sorted({r["corpus"] for r in _of(records, "speed", section=section)})
            for corpus in corpora:
                e, ref = _speed(records, section, "engine fp16", corpus), _speed(records, section, "hf sdpa sorted", corpus)
                if e and ref:
                    ratio = e["tokens_per_s"]["median"] / ref["tokens_per_s"]["median"]
                    rows.append([f"{model} ({corpus}): engine fp16 vs torch fp16 SDPA sorted batches, real tokens/s",
                                 f"{ratio:.2f}x ({_num(e['tokens_per_s']['median'])} vs {_num(ref['tokens_per_s']['median'])})",
                                 f">= {GPU_TARGETS['vs_ref']}x", _met(ratio, GPU_TARGETS["vs_ref"])])
                if e and utilization(e, gemm):
                    u = utilization(e, gemm)["median"]
                    rows.append([f"{model} ({corpus}): engine fp16 share of measured fp16 matmul rate", _pct(u),
                                 f">= {_pct(GPU_TARGETS['utilization'], 0)}", _met(u, GPU_TARGETS["utilization"])])
        for p in _of(records, "parity", output="sentence_embedding", system="engine fp16"):
            rows.append(["engine fp16 pooled embedding, mean cosine vs torch fp32", f"{p['cos_mean']:.6f} (min {p['cos_min']:.6f})",
                         f">= {GPU_TARGETS['fp16_cos']}", _met(p["cos_mean"], GPU_TARGETS["fp16_cos"])])
        return ["question", "measured", "target", "met"], rows
    e32, e8 = _speed(records, "speed", "engine fp32"), _speed(records, "speed", "engine int8")
    st = _speed(records, "speed", "sentence-transformers")
    if e32:
        tps = e32["tokens_per_s"]["median"]
        rows.append(["engine fp32 real tokens/s (all-MiniLM-L6-v2, mixed, max_length 256, 2 threads)", _num(tps),
                     f">= {CPU_TARGETS['fp32_tokens_per_s']:,}", _met(tps, CPU_TARGETS["fp32_tokens_per_s"])])
        if st:
            ratio = tps / st["tokens_per_s"]["median"]
            rows.append(["engine fp32 vs sentence-transformers (torch), real tokens/s", f"{ratio:.2f}x",
                         f">= {CPU_TARGETS['vs_st']}x", _met(ratio, CPU_TARGETS["vs_st"])])
        rows.append(["engine padded-token overhead (mixed corpus)", _pct(e32["pad_overhead"]),
                     f"<= {_pct(CPU_TARGETS['pad_overhead'], 0)}", _met(e32["pad_overhead"], CPU_TARGETS["pad_overhead"], higher=False)])
        if utilization(e32, gemm):
            rows.append(["engine fp32 share of the measured fp32 GEMM rate", _pct(utilization(e32, gemm)["median"]), "–", "–"])
    if e32 and e8:
        ratio = e8["tokens_per_s"]["median"] / e32["tokens_per_s"]["median"]
        rows.append(["engine int8 vs engine fp32, real tokens/s", f"{ratio:.2f}x", f">= {CPU_TARGETS['int8_vs_fp32']}x",
                     _met(ratio, CPU_TARGETS["int8_vs_fp32"])])
    for p in _of(records, "parity", output="sentence_embedding"):
        target = CPU_TARGETS["int8_cos"] if p["precision"] == "int8" else None
        rows.append([f"{p['system']} pooled embedding, mean cosine vs {p['against']}", f"{p['cos_mean']:.6f} (min {p['cos_min']:.6f})",
                     f">= {target}" if target else "–", _met(p["cos_mean"], target) if target else "–"])
    for r in _of(records, "retrieval"):
        rows.append([f"{r['system']}: top-{r['k']} neighbour overlap with {r['against']} ({r['n']:,} texts)",
                     f"{_pct(r['overlap_mean'], 2)} (min {_pct(r['overlap_min'], 0)})", "–", "–"])
    return ["question", "measured", "target", "met"], rows


def speed_table(records: list[dict], section: str) -> list[str]:
    rows_ = _of(records, "speed", section=section)
    gemm = (_of(records, "gemm") or [{}])[-1]
    if not rows_:
        return []
    gpu = any(r.get("device") == "cuda" for r in rows_)
    baseline = next((r.get("baseline") for r in rows_ if r.get("baseline")), None)
    header = ["corpus", "system", "texts", "real tok/s median (min–max)", "texts/s median (min–max)", "pad overhead",
              f"x {baseline}" if baseline else "ratio", "utilization", "peak RSS MiB"]
    if section == "budget":
        header[1] = "budget (tokens)"
    if gpu:
        header.append("GPU MiB (process / torch peak)")
    rows = []
    for r in rows_:
        name = str(r.get("budget")) if section == "budget" else r["system"]
        texts = f"{r['texts']:,}" + (f" (1 in {r['stride']})" if r.get("stride", 1) > 1 else "")
        row = [r["corpus"], name, texts, _range(r["tokens_per_s"]), _range(r["texts_per_s"], 1), _pct(r["pad_overhead"]),
               f"{r['ratio_vs_baseline']:.2f}x" if r.get("ratio_vs_baseline") else "–",
               _pct(utilization(r, gemm).get("median")), _num(r.get("rss_peak_mb"))]
        if gpu:
            proc = _num(r.get("gpu_process_mb")) if r.get("gpu_process_mb") else (
                f"+{_num(r['gpu_device_growth_mb'])} (device)" if r.get("gpu_device_growth_mb") else "–")
            row.append(f"{proc} / {_num(r.get('gpu_torch_peak_mb'))}")
        rows.append(row)
    return _table(header, rows)


def scaling_summary(records: list[dict]) -> dict | None:
    """Least-squares fit seconds = a + b * real_tokens and seconds = a + b * N; R^2; RSS spread."""
    import numpy as np

    rs = sorted(_of(records, "scaling"), key=lambda r: r["n"])
    if len(rs) < 2:
        return None
    n = np.array([r["n"] for r in rs], dtype=float)
    s = np.array([r["seconds"] for r in rs], dtype=float)
    b, a = np.polyfit(n, s, 1)
    pred = a + b * n
    ss_res, ss_tot = float(((s - pred) ** 2).sum()), float(((s - s.mean()) ** 2).sum())
    r2 = 1 - ss_res / ss_tot if ss_tot > 0 else 1.0
    rss = [r.get("rss_peak_mb") or 0 for r in rs]
    per_text_us = [r["seconds"] / r["n"] * 1e6 for r in rs]
    return {"slope_s_per_1k": b * 1000, "intercept_s": a, "r2": r2, "rss_min": min(rss), "rss_max": max(rss),
            "per_text_us": per_text_us, "tokens_per_s": [r["tokens_per_s"] for r in rs]}


# ---------------------------------------------------------------------------------------------------------------------


def write_report(records: list[dict], out: Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plots, plot_note = make_plots(records, out)
    meta = (_of(records, "meta") or [{}])[0]
    gemm = (_of(records, "gemm") or [{}])[-1]
    end = (_of(records, "end") or [{}])[0]
    gpu = meta.get("device") == "cuda"
    L = [f"# Benchmark report: {meta.get('machine', '?')}", ""]
    L.append(f"{'GPU ' + str(meta.get('gpu')) + ' with ' if gpu else ''}{meta.get('cpu')} ({meta.get('cpu_count')} CPUs, "
             f"{meta.get('memory_gib')} GiB); {meta.get('threads')} CPU threads per system; Python {meta.get('python')}; "
             f"started {meta.get('started')}; {meta.get('repeats')} interleaved repeats"
             + (f"; total {end['seconds'] / 60:.1f} min" if end.get("seconds") else "")
             + (". **Quick mode: tiny sizes, for checking the suite, not for quoting.**" if meta.get("quick") else "."))
    if meta.get("loadavg_at_start") is not None:
        la = meta["loadavg_at_start"]
        L.append(f"Load average at start {la[0]:.2f}" + (f", at end {end['loadavg_at_end'][0]:.2f}" if end.get("loadavg_at_end") else "")
                 + f" on {meta.get('cpu_count')} CPUs: other work on the machine slows every system; interleaving spreads it evenly.")
    L.append("")
    L.append("Reproduce: `" + ("python -m benchmarks --device cuda" if gpu else "make bench") + "` (or `engine bench`); "
             "`python -m benchmarks --report-only --out <this folder>` rebuilds this page from `results.jsonl`.")
    L.append("")

    head, rows = headline(records)
    if rows:
        L += ["## Headline", ""] + _table(head, rows) + [""]

    L += ["## What the numbers mean", ""]
    L += [
        "- **real tokens**: non-pad tokens after truncation, [CLS]/[SEP] included; **texts/s** and **real tok/s** divide by "
        "wall time of the whole call: tokenization, batching, the model, pooling, normalization and the copy back to numpy.",
        "- **pad overhead**: share of the tokens the model computed that were padding (padded tokens = rows x padded length "
        "per batch). sentence-transformers does not report it: it is replayed from its own character-length sort.",
        "- **utilization**: useful matmul FLOPs (Q/K/V/output projections and the two FFN matmuls, `2*(4*H*H + 2*H*I)` per "
        "token per layer, plus `QK^T` and `AV`, `4*T*H` per token per layer at the text's real length T; padding not counted) "
        "per second, over the machine's measured "
        + ("torch matmul rate at the system's precision (fp16 tensor cores for fp16, fp32 for fp32)." if gpu else
           "fp32 GEMM rate: the better of numpy (OpenBLAS) sgemm and onnxruntime's MatMul (MLAS), 2048 x 2048, best of 10, "
           "same thread count. int8 is measured against the fp32 rate too, so it can pass 100%."),
        "- **median (min–max)** over the repeats. Systems run round-robin, one after another, never at the same time; "
        "each round starts with a different system; the first round warms every system up on its own texts first (not timed).",
        "- **peak RSS**: each system runs in its own process (multiprocessing spawn), so its peak resident memory (VmHWM) is "
        "its own: interpreter, libraries, model and working memory" + ("; GPU memory is nvidia-smi's per-process figure "
        "(context + allocator pools; where nvidia-smi cannot see processes, the growth of device memory in use since the "
        "process started, marked '(device)') and, for torch, `torch.cuda.max_memory_allocated`." if gpu else "."),
        "- **1 in k**: the slow PyTorch references run on an evenly spaced subset of the same shuffled corpus (same "
        "length distribution) to keep `make bench` within 15 minutes; their per-second rates are comparable, their totals are not.",
        f"- **x baseline**: median real tokens/s over the baseline's median ({'torch fp16 SDPA, length-sorted batches' if gpu else 'sentence-transformers'}).",
    ]
    if any(r.get("section") == "bert" for r in _of(records, "speed")):
        L.append("- **BERT-base** has bert-base-uncased's architecture and tokenizer vocabulary with **random weights** "
                 "(seed 0): right for speed, meaningless for embedding quality.")
    L.append("")

    L += ["## Machine", ""]
    rates = [f"fp32 {_num(gemm.get('fp32_gflops') or gemm.get('sgemm_gflops'), 1)} GFLOP/s ({gemm.get('sgemm_threads')} threads; "
             f"numpy/OpenBLAS sgemm {_num(gemm.get('sgemm_gflops'), 1)}, onnxruntime/MLAS MatMul {_num(gemm.get('ort_sgemm_gflops'), 1)})"]
    if gemm.get("gpu_fp16_tflops"):
        rates.append(f"GPU fp16 matmul {_num(gemm['gpu_fp16_tflops'], 1)} TFLOP/s, fp32 {_num(gemm.get('gpu_fp32_tflops'), 1)} TFLOP/s "
                     f"(TF32 {'on' if gemm.get('gpu_tf32_enabled') else 'off'})")
    samples = _of(records, "gemm_sample")
    L.append("Measured matmul rate (the best of measurements at the start, after each section and at the end; other load only lowers it): "
             + "; ".join(rates) + "." + (" Samples (OpenBLAS / MLAS): " + ", ".join(f"{s['when']} {_num(s.get('sgemm_gflops'))} / {_num(s.get('ort_sgemm_gflops'))}" for s in samples) + " GFLOP/s." if samples else ""))
    L.append("")
    L.append("Versions: " + ", ".join(f"{k} {v}" for k, v in (meta.get("versions") or {}).items()) + ".")
    providers = _of(records, "provider")
    if providers:
        seen = {}
        for p in providers:
            seen[p["system"]] = p["providers"][0]
        L.append("Engine execution providers: " + ", ".join(f"{k}: {v}" for k, v in seen.items()) + ".")
    L.append("")

    corp = {}
    for c in _of(records, "corpus"):
        corp[(c["name"], c["texts"])] = c
    if corp:
        L += ["## Corpora", "", "Real text from this Python's own documentation (pydoc topics and stdlib docstrings, PSF "
              "license), built by `benchmarks/corpus.py` (`python -m benchmarks.corpus --stats`). Token counts use the bundled "
              "tokenizer, untruncated. short: <= 32 tokens; medium: 33–255; long: >= 256 (consecutive paragraphs of one "
              "pydoc topic); mixed: pydoc paragraphs then stdlib docstring paragraphs; retrieval / scaling: stdlib docstring paragraphs only; all in a fixed shuffled order.", ""]
        L += _table(["corpus", "texts", "tokens", "mean", "p5", "p50", "p95", "max", "sha256[:16]"],
                    [[c["name"], f"{c['texts']:,}", f"{c['tokens']:,}", c["mean_tokens"], c.get("p5"), c.get("p50"), c.get("p95"),
                      c.get("p100"), f"`{c['sha256_16']}`"] for c in corp.values()])
        L.append("")

    labels = {}
    for r in _of(records, "speed"):
        labels.setdefault(r["system"], r.get("label"))
    for section, title in SPEED_SECTIONS.items():
        table = speed_table(records, section)
        if not table:
            continue
        L += [f"## {title}", ""] + table + [""]
        if section in plots:
            L += [f"![{title}]({plots[section]})", ""]
    if labels:
        L += ["Systems:", ""] + [f"- **{k}**: {v}" for k, v in labels.items() if not k.startswith("engine") or " budget " not in k] + [""]

    layers = [p for p in _of(records, "parity") if p.get("output") in ("hidden_states", "attentions")]
    pooled = _of(records, "parity", output="sentence_embedding")
    if layers or pooled:
        L += ["## Parity against PyTorch fp32", ""]
    if layers:
        p0 = layers[0]
        L += [f"Every layer of the export's `inspect.onnx` ({p0['system']}, padded batches of {p0['batch']} in input order) "
              f"against {p0['against']}, on {p0['texts']} texts of {p0['token_lengths'][0]}–{p0['token_lengths'][1]} tokens. "
              "hidden_states[0] is the embedding layer output. Cosines are per token vector (hidden states) and per query "
              "row (attention probabilities), on valid positions only.", ""]
        L += _table(["output", "layer", "max abs diff", "cosine mean", "cosine min"],
                    [[p["output"], p["layer"], f"{p['max_abs']:.2e}", f"{p['cos_mean']:.8f}", f"{p['cos_min']:.8f}"] for p in layers])
        L.append("")
    if pooled:
        L += [f"Pooled, normalized sentence embeddings over the retrieval corpus ({pooled[0]['texts']:,} texts), per precision:", ""]
        L += _table(["system", "precision", "against", "max abs diff", "cosine mean", "cosine min", "cosine 1st pct"],
                    [[p["system"], p["precision"], p["against"], f"{p['max_abs']:.2e}", f"{p['cos_mean']:.6f}", f"{p['cos_min']:.6f}",
                      f"{p['cos_p01']:.6f}"] for p in pooled])
        L.append("")
    exports = _of(records, "export")
    if exports:
        L += ["The exporter's own validation of each export used here (its fixed validation texts, batches 1/4/7), from `manifest.json`:", ""]
        rows = []
        for e in exports:
            for out_name, v in (e.get("parity") or {}).items():
                rows.append([e["model"], e["precision"], out_name, f"{v['max_abs']:.2e}" if v.get("max_abs") is not None else "–",
                             f"{v['mean_cos']:.6f}" if v.get("mean_cos") is not None else "–",
                             f"{v['min_cos']:.6f}" if v.get("min_cos") is not None else "–"])
        L += _table(["model", "precision", "graph/output", "max abs diff", "cosine mean", "cosine min"], rows) + [""]

    retr = _of(records, "retrieval")
    if retr:
        L += ["## Retrieval: top-10 nearest neighbours", "",
              "Every text of the retrieval corpus queries all the others (cosine, itself excluded) once with the engine's "
              "embeddings and once with the PyTorch reference's; overlap = shared neighbours / 10.", ""]
        L += _table(["system", "against", "texts", "overlap mean", "overlap min", "queries with all 10 shared", "same top-1"],
                    [[r["system"], r["against"], f"{r['n']:,}", _pct(r["overlap_mean"], 2), _pct(r["overlap_min"], 0),
                      _pct(r["full_overlap_share"]), _pct(r["top1_agreement"])] for r in retr])
        L.append("")

    scal = sorted(_of(records, "scaling"), key=lambda r: r["n"])
    if scal:
        s = scaling_summary(records)
        L += ["## Scaling: engine fp32 against the number of texts", "",
              "One fresh process per N (so peak RSS is that run's own), warmed up on 64 texts, then one `encode` call on "
              "the first N texts of one shuffled corpus (same length distribution at every N). The output matrix itself "
              "(N x 384 float32) is part of the RSS.", ""]
        L += _table(["texts", "real tokens", "seconds", "texts/s", "real tok/s", "pad overhead", "RSS loaded MiB",
                     "peak RSS MiB", "output MiB"],
                    [[f"{r['n']:,}", f"{r['real_tokens']:,}", f"{r['seconds']:.1f}", _num(r["texts_per_s"], 1), _num(r["tokens_per_s"]),
                      _pct(1 - r["real_tokens"] / max(r["padded_tokens"], 1)), _num(r.get("rss_loaded_mb")), _num(r.get("rss_peak_mb")),
                      _num(r["output_mb"], 1)] for r in scal])
        L.append("")
        if s:
            L.append(f"Linear fit seconds = a + b*N: b = {s['slope_s_per_1k']:.3f} s per 1,000 texts, a = {s['intercept_s']:.2f} s, "
                     f"R^2 = {s['r2']:.4f}; peak RSS {s['rss_min']:.0f}–{s['rss_max']:.0f} MiB across N.")
            L.append("")
        if "scaling" in plots:
            L += [f"![scaling]({plots['scaling']})", ""]

    skipped = _of(records, "skipped")
    if skipped or plot_note:
        L += ["## Skipped and notes", ""]
        L += [f"- {s['what']}: {s['why']}" for s in skipped]
        if plot_note:
            L.append(f"- plots: {plot_note}")
        L.append("")
    sections = _of(records, "section")
    if sections:
        L.append("Section times: " + ", ".join(f"{s['section']} {s['seconds']:.0f}s" for s in sections) + ".")
        L.append("")
    path = out / "report.md"
    path.write_text("\n".join(L))
    return path


# ---------------------------------------------------------------------------------------------------------------------


def make_plots(records: list[dict], out: Path) -> tuple[dict, str | None]:
    """PNG plots; returns ({section: file name}, a note when matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}, "matplotlib is not installed here, so this report has no plots (pip install matplotlib)"
    files = {}
    for section in ("speed", "length", "bert"):
        rs = _of(records, "speed", section=section)
        if not rs:
            continue
        corpora = list(dict.fromkeys(r["corpus"] for r in rs))
        systems = list(dict.fromkeys(r["system"] for r in rs))
        fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(systems) * len(corpora) + 2), 4))
        width = 0.8 / len(corpora)
        for j, corpus in enumerate(corpora):
            xs, ys, lo, hi = [], [], [], []
            for i, s in enumerate(systems):
                r = next((r for r in rs if r["system"] == s and r["corpus"] == corpus), None)
                if r and r["tokens_per_s"]:
                    t = r["tokens_per_s"]
                    xs.append(i + j * width)
                    ys.append(t["median"])
                    lo.append(t["median"] - t["min"])
                    hi.append(t["max"] - t["median"])
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=corpus)
        ax.set_xticks([i + width * (len(corpora) - 1) / 2 for i in range(len(systems))])
        ax.set_xticklabels(systems, rotation=25, ha="right", fontsize=8)
        ax.set_ylabel("real tokens / s (median, min–max)")
        ax.set_title(SPEED_SECTIONS[section])
        if len(corpora) > 1:
            ax.legend()
        fig.tight_layout()
        name = f"{section}.png"
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        files[section] = name
    rs = sorted(_of(records, "speed", section="budget"), key=lambda r: r.get("budget") or 0)
    if rs:
        fig, ax = plt.subplots(figsize=(6, 4))
        b = [r["budget"] for r in rs]
        ax.errorbar(b, [r["tokens_per_s"]["median"] for r in rs],
                    yerr=[[r["tokens_per_s"]["median"] - r["tokens_per_s"]["min"] for r in rs],
                          [r["tokens_per_s"]["max"] - r["tokens_per_s"]["median"] for r in rs]], marker="o", capsize=3)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("max_batch_tokens")
        ax.set_ylabel("real tokens / s")
        ax.set_title(f"{rs[0]['system'].rsplit(' budget', 1)[0]} by token budget ({rs[0]['corpus']} corpus)")
        fig.tight_layout()
        fig.savefig(out / "budget.png", dpi=110)
        plt.close(fig)
        files["budget"] = "budget.png"
    scal = sorted(_of(records, "scaling"), key=lambda r: r["n"])
    if scal:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
        n = [r["n"] for r in scal]
        a1.plot(n, [r["seconds"] for r in scal], marker="o")
        a1.set_xlabel("texts")
        a1.set_ylabel("seconds")
        a1.set_title("time against N")
        a2.plot(n, [r.get("rss_peak_mb") or 0 for r in scal], marker="o", label="peak RSS")
        a2.plot(n, [r.get("rss_loaded_mb") or 0 for r in scal], marker=".", label="RSS after load")
        a2.set_xlabel("texts")
        a2.set_ylabel("MiB")
        a2.set_ylim(bottom=0)
        a2.legend()
        a2.set_title("memory against N")
        for a in (a1, a2):
            a.set_xscale("log")
        fig.tight_layout()
        fig.savefig(out / "scaling.png", dpi=110)
        plt.close(fig)
        files["scaling"] = "scaling.png"
    return files, None
