"""Turn the suite's records (results.jsonl) into report.md and PNG plots."""
from __future__ import annotations

from pathlib import Path

from .headline import headline
from .machine import PACKAGES
from .plots import make_plots
from .records import select
from .tables import SPEED_SECTIONS, fmt_num, fmt_pct, md_table, precision_table, speed_table


def scaling_summary(records: list[dict]) -> dict | None:
    """Least-squares fit seconds = a + b * real_tokens and seconds = a + b * N; R^2; RSS spread."""
    import numpy as np

    rs = sorted(select(records, "scaling"), key=lambda r: r["n"])
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


def write_report(records: list[dict], out: Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plots, plot_note = make_plots(records, out)
    meta = (select(records, "meta") or [{}])[0]
    gemm = (select(records, "gemm") or [{}])[-1]
    end = (select(records, "end") or [{}])[0]
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
        L += ["## Headline", ""] + md_table(head, rows) + [""]
    prec = precision_table(records)
    if prec:
        L += ["## Choosing a precision", "", "Speed from the speed section; cosines and neighbour overlap against PyTorch fp32 "
              "over the retrieval corpus (parity section). int8 recipes: docs/export.md.", ""] + prec + [""]

    L += ["## What the numbers mean", ""]
    L += [
        "- **real tokens**: non-pad tokens after truncation, [CLS]/[SEP] included; **texts/s** and **real tok/s** divide by "
        "wall time of the whole call: tokenization, batching, the model, pooling, normalization and the copy back to numpy.",
        "- **pad overhead**: share of the tokens the model computed that were padding (padded tokens = rows x padded length "
        "per batch). sentence-transformers does not report it: it is replayed from its own character-length sort.",
        "- **outside onnxruntime**: engine only; the share of wall time not spent inside onnxruntime's run (waiting for "
        "tokenization and padding from the prefetch thread, scatter, pooling output, normalization, Python), and that time "
        "per batch in ms.",
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
    if any(r.get("section") == "bert" for r in select(records, "speed")):
        L.append("- **BERT-base** has bert-base-uncased's architecture and tokenizer vocabulary with **random weights** "
                 "(seed 0): right for speed, meaningless for embedding quality.")
    L.append("")

    L += ["## Machine", ""]
    if meta.get("cpu_flags") is not None:
        build = meta.get("onnxruntime_build") or {}
        L += [f"CPU: {meta.get('cpu')}, {meta.get('cpu_count')} cores; instruction-set flags: "
              f"{', '.join(meta['cpu_flags']) or 'none of avx2/avx512f/avx512_vnni/avx_vnni/amx'}. onnxruntime "
              f"{build.get('version')} ({build.get('device')} build; providers {', '.join(build.get('providers') or [])}).", ""]
    rates = [f"fp32 {fmt_num(gemm.get('fp32_gflops') or gemm.get('sgemm_gflops'), 1)} GFLOP/s ({gemm.get('sgemm_threads')} threads; "
             f"numpy/OpenBLAS sgemm {fmt_num(gemm.get('sgemm_gflops'), 1)}, onnxruntime/MLAS MatMul {fmt_num(gemm.get('ort_sgemm_gflops'), 1)})"]
    if gemm.get("bf16_gflops"):  # CPUs with bf16 units: the rate the engine's bf16 rows are divided by
        rates.append(f"bf16 {fmt_num(gemm['bf16_gflops'], 1)} GFLOP/s (OpenVINO bf16 MatMul 2048 {fmt_num(gemm.get('ov_bf16_gflops_2048'), 1)}, "
                     f"4096 {fmt_num(gemm.get('ov_bf16_gflops_4096'), 1)}; torch/oneDNN bf16 4096 {fmt_num(gemm.get('torch_bf16_gflops'), 1)})")
    if gemm.get("cpu_matrix_flags") is not None:
        rates.append(f"CPU matrix/bf16 flags: {gemm['cpu_matrix_flags'] or 'none'}")
    if gemm.get("gpu_fp16_tflops"):
        rates.append(f"GPU fp16 matmul {fmt_num(gemm['gpu_fp16_tflops'], 1)} TFLOP/s, fp32 {fmt_num(gemm.get('gpu_fp32_tflops'), 1)} TFLOP/s "
                     f"(TF32 {'on' if gemm.get('gpu_tf32_enabled') else 'off'})")
    samples = select(records, "gemm_sample")
    L.append("Measured matmul rate (the best of measurements at the start, after each section and at the end; other load only lowers it): "
             + "; ".join(rates) + "." + (" Samples (OpenBLAS / MLAS): " + ", ".join(f"{s['when']} {fmt_num(s.get('sgemm_gflops'))} / {fmt_num(s.get('ort_sgemm_gflops'))}" for s in samples) + " GFLOP/s." if samples else ""))
    L.append("")
    # results.jsonl stores keys sorted, so order by PACKAGES: a rebuilt report then matches the one written live
    versions = sorted((meta.get("versions") or {}).items(), key=lambda kv: PACKAGES.index(kv[0]) if kv[0] in PACKAGES else len(PACKAGES))
    L.append("Versions: " + ", ".join(f"{k} {v}" for k, v in versions) + ".")
    providers = select(records, "provider")
    if providers:
        seen = {}
        for p in providers:
            seen[p["system"]] = p["providers"][0]
        L.append("Engine execution providers: " + ", ".join(f"{k}: {v}" for k, v in seen.items()) + ".")
    L.append("")

    corp = {}
    for c in select(records, "corpus"):
        corp[(c["name"], c["texts"])] = c
    if corp:
        L += ["## Corpora", "", "Real text from this Python's own documentation (pydoc topics and stdlib docstrings, PSF "
              "license), built by `benchmarks/corpus.py` (`python -m benchmarks.corpus --stats`). Token counts use the bundled "
              "tokenizer, untruncated. short: <= 32 tokens; medium: 33–255; long: >= 256 (consecutive paragraphs of one "
              "pydoc topic); mixed: pydoc paragraphs then stdlib docstring paragraphs; retrieval / scaling: stdlib docstring paragraphs only; all in a fixed shuffled order.", ""]
        L += md_table(["corpus", "texts", "tokens", "mean", "p5", "p50", "p95", "max", "sha256[:16]"],
                    [[c["name"], f"{c['texts']:,}", f"{c['tokens']:,}", c["mean_tokens"], c.get("p5"), c.get("p50"), c.get("p95"),
                      c.get("p100"), f"`{c['sha256_16']}`"] for c in corp.values()])
        L.append("")

    labels = {}
    for r in select(records, "speed"):
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

    layers = [p for p in select(records, "parity") if p.get("output") in ("hidden_states", "attentions")]
    pooled = select(records, "parity", output="sentence_embedding")
    if layers or pooled:
        L += ["## Parity against PyTorch fp32", ""]
    if layers:
        p0 = layers[0]
        L += [f"Every layer of the export's `inspect.onnx` ({p0['system']}, padded batches of {p0['batch']} in input order) "
              f"against {p0['against']}, on {p0['texts']} texts of {p0['token_lengths'][0]}–{p0['token_lengths'][1]} tokens. "
              "hidden_states[0] is the embedding layer output. Cosines are per token vector (hidden states) and per query "
              "row (attention probabilities), on valid positions only.", ""]
        L += md_table(["output", "layer", "max abs diff", "cosine mean", "cosine min"],
                    [[p["output"], p["layer"], f"{p['max_abs']:.2e}", f"{p['cos_mean']:.8f}", f"{p['cos_min']:.8f}"] for p in layers])
        L.append("")
    if pooled:
        L += [f"Pooled, normalized sentence embeddings over the retrieval corpus ({pooled[0]['texts']:,} texts), per precision:", ""]
        L += md_table(["system", "precision", "against", "max abs diff", "cosine mean", "cosine min", "cosine 1st pct"],
                    [[p["system"], p["precision"], p["against"], f"{p['max_abs']:.2e}", f"{p['cos_mean']:.6f}", f"{p['cos_min']:.6f}",
                      f"{p['cos_p01']:.6f}"] for p in pooled])
        L.append("")
    exports = select(records, "export")
    if exports:
        L += ["The exporter's own validation of each export used here (its fixed validation texts, batches 1/4/7), from `manifest.json`:", ""]
        rows = []
        for e in exports:
            for out_name, v in (e.get("parity") or {}).items():
                rows.append([e["model"], e["precision"], out_name, f"{v['max_abs']:.2e}" if v.get("max_abs") is not None else "–",
                             f"{v['mean_cos']:.6f}" if v.get("mean_cos") is not None else "–",
                             f"{v['min_cos']:.6f}" if v.get("min_cos") is not None else "–"])
        L += md_table(["model", "precision", "graph/output", "max abs diff", "cosine mean", "cosine min"], rows) + [""]

    retr = select(records, "retrieval")
    if retr:
        L += ["## Retrieval: top-10 nearest neighbours", "",
              "Every text of the retrieval corpus queries all the others (cosine, itself excluded) once with the engine's "
              "embeddings and once with the PyTorch reference's; overlap = shared neighbours / 10.", ""]
        L += md_table(["system", "against", "texts", "overlap mean", "overlap min", "queries with all 10 shared", "same top-1"],
                    [[r["system"], r["against"], f"{r['n']:,}", fmt_pct(r["overlap_mean"], 2), fmt_pct(r["overlap_min"], 0),
                      fmt_pct(r["full_overlap_share"]), fmt_pct(r["top1_agreement"])] for r in retr])
        L.append("")

    scal = sorted(select(records, "scaling"), key=lambda r: r["n"])
    if scal:
        s = scaling_summary(records)
        L += ["## Scaling: engine fp32 against the number of texts", "",
              "One fresh process per N (so peak RSS is that run's own), warmed up on 64 texts, then one `encode` call on "
              "the first N texts of one shuffled corpus (same length distribution at every N). The output matrix itself "
              "(N x 384 float32) is part of the RSS.", ""]
        L += md_table(["texts", "real tokens", "seconds", "texts/s", "real tok/s", "pad overhead", "RSS loaded MiB",
                     "peak RSS MiB", "output MiB"],
                    [[f"{r['n']:,}", f"{r['real_tokens']:,}", f"{r['seconds']:.1f}", fmt_num(r["texts_per_s"], 1), fmt_num(r["tokens_per_s"]),
                      fmt_pct(1 - r["real_tokens"] / max(r["padded_tokens"], 1)), fmt_num(r.get("rss_loaded_mb")), fmt_num(r.get("rss_peak_mb")),
                      fmt_num(r["output_mb"], 1)] for r in scal])
        L.append("")
        if s:
            L.append(f"Linear fit seconds = a + b*N: b = {s['slope_s_per_1k']:.3f} s per 1,000 texts, a = {s['intercept_s']:.2f} s, "
                     f"R^2 = {s['r2']:.4f}; peak RSS {s['rss_min']:.0f}–{s['rss_max']:.0f} MiB across N.")
            L.append("")
        if "scaling" in plots:
            L += [f"![scaling]({plots['scaling']})", ""]

    skipped = select(records, "skipped")
    if skipped or plot_note:
        L += ["## Skipped and notes", ""]
        L += [f"- {s['what']}: {s['why']}" for s in skipped]
        if plot_note:
            L.append(f"- plots: {plot_note}")
        L.append("")
    sections = select(records, "section")
    if sections:
        L.append("Section times: " + ", ".join(f"{s['section']} {s['seconds']:.0f}s" for s in sections) + ".")
        L.append("")
    path = out / "report.md"
    path.write_text("\n".join(L))
    return path
