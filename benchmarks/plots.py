"""The report's PNG plots (matplotlib, optional)."""
from __future__ import annotations

from pathlib import Path

from .records import select
from .tables import SPEED_SECTIONS


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
        rs = select(records, "speed", section=section)
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
    rs = sorted(select(records, "speed", section="budget"), key=lambda r: r.get("budget") or 0)
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
    scal = sorted(select(records, "scaling"), key=lambda r: r["n"])
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
