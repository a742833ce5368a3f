"""serve.md from the serve benchmark's records (benchmarks.serve_load)."""
from __future__ import annotations

from pathlib import Path


def _f(x, digits: int = 0) -> str:
    if x is None:
        return "-"
    return f"{x:,.{digits}f}"


def write_report(records: list[dict], path: Path, command: str) -> None:
    meta = next(r for r in records if r["type"] == "meta")
    loads = [r for r in records if r["type"] == "load"]
    lines = [
        "# engine serve under load",
        "",
        f"Command: `{command}`. CPU: {meta['cpu']}, {meta['cpu_count']} cores, flags {', '.join(meta['cpu_flags']) or 'none'}; "
        f"{meta['threads']} threads per system; load average at start {', '.join(f'{x:.1f}' for x in meta['loadavg_at_start'])} "
        f"(a machine shared with other work). {meta['seconds_per_level']:.0f} s per level and system (not 5 minutes: the "
        "machine is shared), all-MiniLM-L6-v2 fp32, the mixed real-text corpus (pydoc paragraphs, 1 to 600+ tokens, "
        "truncated at 256). Each client sends requests of 1 to 32 consecutive corpus texts (float JSON) back to back.",
        "",
        "Offline = `Embedder.encode` on the first 800 corpus texts, measured before and after each level in the same run "
        "(their mean is the level's reference). naive = sentence-transformers behind the same Starlette + uvicorn + "
        "orjson stack, one request at a time. Tokens are real (non-pad) tokens, special tokens included.",
        "",
        "| system | clients | req/s | real tok/s | share of offline | p50 ms | p95 ms | p99 ms | errors | RSS first / last / peak MiB | JSON share of wall | pad share |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in loads:
        json_share = f"{100 * r['json_share_of_wall']:.2f}%" if r.get("json_share_of_wall") is not None else "-"
        pad = f"{100 * r['pad_share']:.1f}%" if r.get("pad_share") is not None else "-"
        lines.append(f"| {r['system']} | {r['clients']} | {_f(r['requests_per_s'], 1)} | {_f(r['tokens_per_s'])} | "
                     f"{100 * r['share_of_offline']:.0f}% | {_f(r['p50_ms'])} | {_f(r['p95_ms'])} | {_f(r['p99_ms'])} | "
                     f"{r['errors']} | {_f(r['rss_first_mb'])} / {_f(r['rss_last_mb'])} / {_f(r['rss_peak_mb'])} | {json_share} | {pad} |")
    for r in records:
        if r["type"] == "latency":
            lines += ["", f"1 client, 1 short text per request ({r['requests']} requests, alternating with a bare "
                      f"`Embedder.encode([text])`): server p50 {r['served_p50_ms']:.2f} ms, bare encode p50 "
                      f"{r['bare_encode_p50_ms']:.2f} ms, ratio {r['ratio']:.2f}x (target <= 1.5x)."]
        if r["type"] == "fairness":
            lines += ["", f"Fairness: one request of {r['big_texts']:,} texts, then 1-text requests one after another: "
                      f"{r['small_requests']} answered, p50 {r['small_p50_ms']:.0f} ms, max {r['small_max_ms']:.0f} ms, "
                      f"while the big request {'had finished' if r['big_finished_meanwhile'] else 'was still running'} "
                      f"({r['seconds_since_big_sent']} s after it was sent; then its client hung up)."]
    engine_json = [r for r in loads if r["system"] == "engine" and r.get("json_ms_per_request") is not None]
    if engine_json:
        lines += ["", "JSON encoding (orjson, float arrays) per request: " + ", ".join(
            f"{r['clients']} client(s) {r['json_ms_per_request']:.2f} ms ({100 * r['json_share_of_wall']:.2f}% of wall time)"
            for r in engine_json) + "."]
    path.write_text("\n".join(lines) + "\n")
