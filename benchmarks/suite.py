"""The benchmark suite: speed (interleaved, repeated), parity, retrieval and scaling; writes results.jsonl + report.md.

Entry points: `python -m benchmarks` and `engine bench` both parse options into Options and call run(Options).
Every measurement is one JSON record; the report is built from the records alone (`--report-only` rebuilds it).
"""
from __future__ import annotations

import json
import math
import os
import platform
import re
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import corpus as C
from .gemm import corpus_flops, measure_in_subprocess
from .models import ModelSpec, bert_base, default_cache, ensure_export, minilm
from .systems import SystemConfig, available
from .worker import Pool, Worker, WorkerError, proc_status_mb

SECTIONS = ("speed", "length", "budget", "bert", "parity", "scaling")
SECTION_HELP = {
    "speed": "all-MiniLM-L6-v2 on the mixed corpus (3,000 texts): every system, interleaved and repeated",
    "length": "all-MiniLM-L6-v2 on short / medium / long texts",
    "budget": "the engine at several batch token budgets",
    "bert": "BERT-base (random weights) speed",
    "parity": "hidden states and attentions per layer, pooled embeddings per precision, top-10 neighbour overlap",
    "scaling": "engine time and peak RSS against the number of texts",
}
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Options:
    """What `python -m benchmarks` / `engine bench` asked for."""

    device: str = "cpu"
    quick: bool = False
    out: Path | None = None  # default: benchmarks/results/<machine> (full), build/bench-quick/<machine> (quick)
    repeats: int | None = None  # default: 3
    only: tuple[str, ...] = SECTIONS
    threads: int = 2
    cache: Path | None = None  # exports + random BERT-base; default: the engine's cache folder + /bench
    exports: dict = field(default_factory=dict)  # "minilm-fp32" -> existing export folder (skips exporting)
    scaling_100k: bool = False
    report_only: bool = False
    log: object = None


@dataclass(frozen=True)
class Plan:
    """Sizes of every measurement; the full plan keeps `make bench` under 15 minutes on 2 CPU cores."""

    repeats: int
    mixed: int  # texts in the mixed corpus (issue 3: >= 3,000)
    stride: dict  # system name -> measure every k-th text of a corpus (slow references); missing: 1
    lengths: dict  # short / medium / long -> texts
    budgets: tuple[int, ...]
    budget_corpus: tuple[str, int]
    bert: dict  # corpus -> texts
    parity_texts: int  # texts for the per-layer comparison
    retrieval: int  # texts in the top-10 neighbour check (>= 5,000)
    scaling: tuple[int, ...]


def make_plan(device: str, quick: bool, repeats: int | None, scaling_100k: bool) -> Plan:
    if device == "cuda":
        plan = Plan(repeats=3, mixed=3000, stride={}, lengths={"short": 3000, "medium": 2000, "long": 250},
                    budgets=(4096, 16384, 65536, 131072), budget_corpus=("mixed", 3000),
                    bert={"medium": 2000, "long": 250}, parity_texts=64, retrieval=5000,
                    scaling=(1000, 3000, 10000, 30000))
        if quick:
            plan = replace(plan, mixed=300, lengths={"short": 200, "medium": 100, "long": 40}, budgets=(4096, 65536),
                           budget_corpus=("mixed", 300), bert={"medium": 100}, parity_texts=16, retrieval=500,
                           scaling=(100, 300))
    else:
        # Measured here: transformers eager ~300-700 real tokens/s, SDPA ~450-1,400, sentence-transformers ~750-3,000,
        # engine ~4,500 (2 threads). The slow references run on an evenly spaced subset of the same corpus.
        plan = Plan(repeats=3, mixed=3000,
                    stride={"hf eager input": 20, "hf eager sorted": 20, "hf sdpa input": 12, "hf sdpa sorted": 10,
                            "sentence-transformers": 6},
                    lengths={"short": 400, "medium": 200, "long": 48}, budgets=(1024, 4096, 16384, 65536),
                    budget_corpus=("medium", 200), bert={"medium": 40}, parity_texts=32, retrieval=5000,
                    scaling=(1000, 3000, 10000))
        if quick:
            plan = replace(plan, mixed=60, stride={"hf eager input": 3, "hf eager sorted": 3, "hf sdpa input": 2},
                           lengths={"short": 24, "medium": 12, "long": 4}, budgets=(1024, 16384),
                           budget_corpus=("medium", 12), bert={}, parity_texts=4, retrieval=100, scaling=(30, 90))
    if repeats:
        plan = replace(plan, repeats=repeats)
    if scaling_100k:
        plan = replace(plan, scaling=tuple(sorted(set(plan.scaling) | {30000, 100000})))
    return plan


# ---------------------------------------------------------------------------------------------------------------------
# machine


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name() -> str | None:
    import shutil
    import subprocess

    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", "0"],
                                 capture_output=True, text=True, timeout=20).stdout.strip()
            return out.splitlines()[0] if out else None
        except (OSError, subprocess.SubprocessError):
            return None
    return None


def machine_slug(device: str) -> str:
    """cpu-<cpu model>-<cores>c, or gpu-<model> (gpu-h100 for any H100)."""
    if device == "cuda":
        name = gpu_name() or "unknown"
        m = re.search(r"\b([ABHL]\d{2,3}|V100|T4)\b", name.upper())
        return f"gpu-{m.group(1).lower()}" if m else f"gpu-{_slug(name.replace('NVIDIA', ''))}"
    return f"cpu-{_slug(cpu_model())}-{os.cpu_count()}c"


def machine_record(opts: Options, plan: Plan) -> dict:
    import importlib.metadata as md

    versions = {}
    for pkg in ("embedding-engine", "onnxruntime", "onnxruntime-gpu", "torch", "transformers", "sentence-transformers",
                "tokenizers", "numpy", "matplotlib"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "type": "meta", "machine": machine_slug(opts.device), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
        "gpu": gpu_name() if opts.device == "cuda" else None, "device": opts.device, "threads": opts.threads,
        "quick": opts.quick, "repeats": plan.repeats, "sections": list(opts.only), "python": platform.python_version(),
        "platform": platform.platform(), "versions": versions, "loadavg_at_start": load,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "plan": _plan_dict(plan),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def _plan_dict(plan: Plan) -> dict:
    d = dict(plan.__dict__)
    d["budget_corpus"] = list(plan.budget_corpus)
    return d


# ---------------------------------------------------------------------------------------------------------------------
# records


class Recorder:
    """Appends records to results.jsonl as they come (a crash keeps what was measured) and keeps them in memory."""

    def __init__(self, path: Path, log) -> None:
        self.path, self.log, self.records = path, log, []
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = path.open("w")

    def add(self, record: dict) -> dict:
        record = _clean(record)
        self.records.append(record)
        self.fh.write(json.dumps(record, sort_keys=True) + "\n")
        self.fh.flush()
        return record

    def skip(self, what: str, why: str) -> None:
        self.log(f"  skipped {what}: {why}")
        self.add({"type": "skipped", "what": what, "why": why})

    def close(self) -> None:
        self.fh.close()


def _clean(value):
    """JSON-safe: numpy scalars to Python, NaN / inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, Path):
        return str(value)
    return value


# ---------------------------------------------------------------------------------------------------------------------
# systems


def system_configs(device: str, spec: ModelSpec, exports: dict, threads: int, which: tuple[str, ...] | None = None) -> list[SystemConfig]:
    """The systems compared on one model: the PyTorch references, sentence-transformers and the engine."""
    m, L = str(spec.source), spec.max_length
    ref = "fp16" if device == "cuda" else "fp32"
    base = dict(model=m, device=device, threads=threads, max_length=L)
    cfgs = [
        SystemConfig(name="hf eager input", kind="hf", attn="eager", order="input", precision=ref, **base),
        SystemConfig(name="hf eager sorted", kind="hf", attn="eager", order="sorted", precision=ref, **base),
        SystemConfig(name="hf sdpa input", kind="hf", attn="sdpa", order="input", precision=ref, **base),
        SystemConfig(name="hf sdpa sorted", kind="hf", attn="sdpa", order="sorted", precision=ref, **base),
    ]
    if device == "cuda":
        cfgs.append(SystemConfig(name="hf sdpa sorted fp32", kind="hf", attn="sdpa", order="sorted", precision="fp32", **base))
    cfgs.append(SystemConfig(name="sentence-transformers", kind="st", precision=ref, **base))
    for prec, folder in exports.items():
        cfgs.append(SystemConfig(name=f"engine {prec}", kind="engine", precision=prec, export=str(folder), **base))
    if which is not None:
        cfgs = [c for c in cfgs if c.name in which]
    return cfgs


def ref_label(c: SystemConfig) -> str:
    """What a system is, in words, for the report."""
    if c.kind == "hf":
        return f"transformers AutoModel, {c.attn} attention, {c.precision}, batch {c.batch_size}, {c.order} order"
    if c.kind == "st":
        return f"sentence-transformers (torch backend), {c.precision}, batch {c.batch_size} (sorted by characters)"
    return f"engine.Embedder, {c.precision} export, {c.device}, max_batch_tokens {c.max_batch_tokens or 'default (4096 on CPU, 32768 on CUDA)'}"


def baseline_name(device: str, names: list[str]) -> str | None:
    """Ratios are against sentence-transformers on CPU (issue 3) and torch fp16 SDPA sorted batches on GPU."""
    prefs = ["hf sdpa sorted", "sentence-transformers"] if device == "cuda" else ["sentence-transformers", "hf sdpa sorted"]
    return next((p for p in prefs if p in names), None)


# ---------------------------------------------------------------------------------------------------------------------
# measuring


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
    return "fp32_gflops"  # int8 too: there is no int8 GEMM reference here, so int8 can pass 100%


def real_lengths(texts: list[str], max_length: int) -> np.ndarray:
    return np.minimum(C.token_lengths(texts), max_length)


# ---------------------------------------------------------------------------------------------------------------------
# sections


class Suite:
    """The sections; each asks the worker pool for its systems, so systems shared by sections load once."""

    def __init__(self, opts: Options, plan: Plan, rec: Recorder, log) -> None:
        self.opts, self.plan, self.rec, self.log = opts, plan, rec, log
        self.cache = Path(opts.cache or default_cache())
        self.rates: dict = {}
        self.specs: dict = {}
        self.exports: dict = {}  # model key -> {precision: folder}
        self.corpora: dict = {}
        self.pool = Pool(log)

    # -- inputs ---------------------------------------------------------------------------------------------------
    def corpus(self, name: str, n: int) -> list[str]:
        key = (name, n)
        if key not in self.corpora:
            texts = C.CORPORA[name](n)
            self.corpora[key] = texts
            self.rec.add({"type": "corpus", "name": name, **C.corpus_stats(texts)})
        return self.corpora[key]

    def engine_precisions(self) -> tuple[str, ...]:
        return ("fp32", "fp16") if self.opts.device == "cuda" else ("fp32", "int8")

    def model(self, key: str) -> ModelSpec:
        """The model and its engine exports (made once, cached between runs)."""
        if key in self.specs:
            return self.specs[key]
        spec = minilm() if key == "minilm" else bert_base(self.cache, max_length=512 if self.opts.device == "cuda" else 256, log=self.log)
        exports = {}
        for prec in self.engine_precisions():
            try:
                t = time.perf_counter()
                folder = ensure_export(spec, prec, self.cache, self.opts.exports, log=self.log)
                exports[prec] = folder
                manifest = json.loads((folder / "manifest.json").read_text())
                self.rec.add({"type": "export", "model": key, "precision": prec, "folder": str(folder),
                              "seconds": round(time.perf_counter() - t, 1), "fused_ops": manifest.get("fused_ops"),
                              "attention_fused": manifest.get("attention_fused"), "parity": _manifest_parity(manifest)})
            except Exception as err:  # noqa: BLE001 - a failed export skips that system, not the suite
                self.rec.skip(f"engine {prec} on {spec.label}", f"export failed: {type(err).__name__}: {str(err).splitlines()[0]}")
        self.specs[key] = spec
        self.exports[key] = exports
        return spec

    def systems(self, model: str, names: tuple[str, ...] | None) -> list[SystemConfig]:
        spec = self.model(model)
        return system_configs(self.opts.device, spec, self.exports[model], self.opts.threads, names)

    def workers(self, cfgs: list[SystemConfig]) -> dict:
        usable = []
        for c in cfgs:
            why = available(c.kind)
            if why:
                self.rec.skip(c.name, why)
            else:
                usable.append(c)
        ready, errors = self.pool.get(usable)
        for name, err in errors.items():
            self.rec.skip(name, f"could not start: {(err or 'unknown').strip().splitlines()[-1]}")
        for name, w in ready.items():
            if w.info and w.info.get("providers"):
                self.rec.add({"type": "provider", "system": name, "providers": w.info["providers"]})
        return ready

    # -- which systems each section uses (so the pool keeps only what is still needed) -----------------------------
    def needs(self, section: str) -> list[SystemConfig]:
        if section == "speed":
            return self.systems("minilm", None)
        if section == "length":
            return self.systems("minilm", ("hf sdpa sorted", "sentence-transformers") + self._engines())
        if section == "parity":
            return [self.reference_config()] + self.systems("minilm", self._engines())
        return []  # budget, bert and scaling use their own processes

    def _engines(self) -> tuple[str, ...]:
        return tuple(f"engine {p}" for p in self.engine_precisions())

    def reference_config(self) -> SystemConfig:
        """PyTorch fp32 for the pooled-embedding and retrieval checks: sentence-transformers, else transformers SDPA."""
        name = "sentence-transformers" if available("st") is None else "hf sdpa sorted"
        cfg = self.systems("minilm", (name,))[0]
        return cfg if cfg.precision == "fp32" else replace(cfg, name=f"{name} fp32", precision="fp32")

    # -- sections -------------------------------------------------------------------------------------------------
    def run_gemm(self, when: str = "start") -> None:
        """Measure the matmul rate; again after each section and at the end, keeping the best (other load only lowers it)."""
        self.log(f"measuring the machine's matmul rate ({when})")
        try:
            rates = measure_in_subprocess(self.opts.device, self.opts.threads)
        except Exception as err:  # noqa: BLE001
            self.rec.skip(f"gemm at {when}", str(err).strip().splitlines()[-1])
            return
        if rates.get("gpu_error"):
            self.rec.skip(f"GPU matmul rate at {when}", rates["gpu_error"])
        self.rec.add({"type": "gemm_sample", "when": when, **rates})
        for k, v in rates.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self.rates[k] = max(v, self.rates.get(k, 0))
            else:
                self.rates.setdefault(k, v)

    def _speed_on(self, section: str, spec: ModelSpec, corpora: dict, cfgs: list[SystemConfig], strides: dict,
                  baseline: str | None = "auto") -> list[dict]:
        """Interleaved, repeated speed of the systems on each corpus (name -> texts)."""
        workers = self.workers(cfgs)
        by_name = {c.name: c for c in cfgs}
        if baseline == "auto":
            baseline = baseline_name(self.opts.device, list(workers))
        out = []
        for corpus_name, texts in corpora.items():
            jobs = {n: texts[:: strides.get(n, 1)] for n in workers}
            meta = {"section": section, "model": spec.key, "corpus": corpus_name}
            runs = interleave(self.rec, workers, jobs, self.plan.repeats, meta, self.log,
                              budget_for=(lambda s: by_name[s].max_batch_tokens) if section == "budget" else None)
            lengths = {n: real_lengths(t, spec.max_length) for n, t in jobs.items()}
            extra = {n: {"stride": strides.get(n, 1)} for n in jobs}
            out += summarize(self.rec, runs, meta, by_name, lengths, spec.config(), baseline, extra=extra)
        return out

    def run_speed(self) -> None:
        self.log(f"speed: all-MiniLM-L6-v2 on the mixed corpus, every system, {self.plan.repeats} interleaved repeats")
        spec = self.model("minilm")
        self._speed_on("speed", spec, {"mixed": self.corpus("mixed", self.plan.mixed)}, self.needs("speed"), self.plan.stride)

    def run_length(self) -> None:
        self.log("speed by text length")
        spec = self.model("minilm")
        corpora = {name: self.corpus(name, n) for name, n in self.plan.lengths.items()}
        strides = {} if self.opts.device == "cuda" or self.opts.quick else {"hf sdpa sorted": 2, "sentence-transformers": 2}
        self._speed_on("length", spec, corpora, self.needs("length"), strides)

    def run_budget(self) -> None:
        self.log("engine speed by batch token budget")
        spec = self.model("minilm")
        name, n = self.plan.budget_corpus
        prec = self.engine_precisions()[-1] if self.opts.device == "cuda" else "fp32"
        base = self.systems("minilm", (f"engine {prec}",))
        if not base:
            self.rec.skip("budget", f"no engine {prec} export")
            return
        cfgs = [base[0] if b == base[0].max_batch_tokens else replace(base[0], name=f"engine {prec} budget {b}", max_batch_tokens=b)
                for b in self.plan.budgets]
        self._speed_on("budget", spec, {name: self.corpus(name, n)}, cfgs, {}, baseline=None)

    def run_bert(self) -> None:
        if not self.plan.bert:
            self.rec.skip("bert", "not in --quick (the random BERT-base exports take minutes on CPU); run without --quick")
            return
        self.log("BERT-base (random weights) speed")
        spec = self.model("bert-base")
        names = ("hf sdpa sorted", "sentence-transformers") + self._engines()
        if self.opts.device == "cuda":
            names += ("hf sdpa sorted fp32", "hf eager sorted")
        corpora = {name: self.corpus(name, n) for name, n in self.plan.bert.items()}
        self._speed_on("bert", spec, corpora, self.systems("bert-base", names), {})

    def run_parity(self) -> None:
        from .parity import layer_parity, pooled_parity, retrieval_overlap

        spec = self.model("minilm")
        exports = self.exports[spec.key]
        if "fp32" in exports:
            self.log(f"parity: every layer of inspect.onnx against transformers eager fp32 ({self.plan.parity_texts} texts)")
            texts = self.corpus("mixed", self.plan.mixed)
            step = max(1, len(texts) // self.plan.parity_texts)
            try:
                for r in layer_parity(spec, exports["fp32"], texts[::step][: self.plan.parity_texts], self.opts.device, self.opts.threads):
                    self.rec.add({"type": "parity", "model": spec.key, **r})
            except Exception as err:  # noqa: BLE001
                self.rec.skip("layer parity", f"{type(err).__name__}: {err}")
        else:
            self.rec.skip("layer parity", "no fp32 export")

        self.log(f"parity: pooled embeddings and top-10 neighbours over {self.plan.retrieval:,} texts")
        corpus = self.corpus("retrieval", self.plan.retrieval)
        ref_cfg = self.reference_config()
        cfgs = [ref_cfg] + self.systems("minilm", self._engines())
        if self.opts.device == "cuda":
            cfgs.append(self.systems("minilm", ("hf sdpa sorted",))[0])  # torch fp16, for context
        workers = self.workers(cfgs)
        embs = {}
        for name, w in workers.items():
            try:
                m, e = w.run(corpus, warm_up=True, embeddings=True)
            except WorkerError as err:
                self.rec.skip(f"retrieval embeddings from {name}", str(err).strip().splitlines()[-1])
                continue
            embs[name] = e
            self.rec.add({"type": "run", "section": "parity", "model": spec.key, "corpus": "retrieval", "system": name, "repeat": 0, **m})
            self.log(f"  retrieval {name:<24}: {m['real_tokens'] / m['seconds']:9.0f} real tok/s")
        ref = embs.get(ref_cfg.name)
        if ref is None:
            self.rec.skip("pooled parity and retrieval", f"the reference {ref_cfg.name} did not run")
            return
        against = f"PyTorch fp32 ({ref_cfg.name})"
        for name, e in embs.items():
            if name == ref_cfg.name:
                continue
            prec = next(c.precision for c in cfgs if c.name == name)
            self.rec.add({"type": "parity", "model": spec.key, "output": "sentence_embedding", "layer": None,
                          "precision": prec, "system": name, "against": against, **pooled_parity(e, ref)})
            self.rec.add({"type": "retrieval", "model": spec.key, "system": name, "precision": prec, "against": against,
                          **retrieval_overlap(e, ref, k=10)})

    def run_scaling(self) -> None:
        cfgs = self.systems("minilm", ("engine fp32",))
        if not cfgs:
            self.rec.skip("scaling", "no fp32 export")
            return
        cfg = cfgs[0]
        dim = self.model("minilm").config()["hidden_size"]
        top = max(self.plan.scaling)
        self.log(f"scaling: engine fp32 on the first N of {top:,} texts, one fresh process per N")
        texts = C.scaling_texts(top)
        self.rec.add({"type": "corpus", "name": "scaling", **C.corpus_stats(texts)})
        for n in self.plan.scaling:
            w = Worker(cfg)
            try:
                if not w.wait_ready():
                    self.rec.skip(f"scaling N={n}", (w.error or "unknown").strip().splitlines()[-1])
                    continue
                loaded = proc_status_mb(w.proc.pid)
                w.run(texts[:64])  # warm-up, untimed
                m, _ = w.run(texts[:n])
            except WorkerError as err:
                self.rec.skip(f"scaling N={n}", str(err).strip().splitlines()[-1])
                continue
            finally:
                w.close()
            self.rec.add({"type": "scaling", "model": "minilm", "system": cfg.name, "n": n, **m,
                          "rss_loaded_mb": loaded.get("rss_mb"), "output_mb": n * dim * 4 / 2**20,
                          "texts_per_s": m["texts"] / m["seconds"], "tokens_per_s": m["real_tokens"] / m["seconds"]})
            self.log(f"  N={n:>7,}: {m['seconds']:7.1f}s  {m['texts'] / m['seconds']:7.1f} texts/s  peak RSS {m.get('rss_peak_mb')} MiB")


def _manifest_parity(manifest: dict) -> dict:
    """The exporter's own parity numbers (validation texts), per graph and output."""
    out = {}
    for graph, rep in (manifest.get("parity") or {}).items():
        for name, o in rep.get("outputs", {}).items():
            out[f"{graph}/{name}"] = {k: o.get(k) for k in ("max_abs", "mean_cos", "min_cos")}
    return out


# ---------------------------------------------------------------------------------------------------------------------


def default_out(device: str, quick: bool) -> Path:
    slug = machine_slug(device)
    return REPO / "build" / "bench-quick" / slug if quick else REPO / "benchmarks" / "results" / slug


def run(opts: Options) -> Path:
    """Run the suite; returns the output folder holding results.jsonl, report.md and the plots."""
    from .report import write_report

    t0 = time.perf_counter()
    log = opts.log or (lambda m: print(f"[{time.perf_counter() - t0:6.0f}s] {m}", file=sys.stderr, flush=True))
    out = Path(opts.out) if opts.out else default_out(opts.device, opts.quick)
    if opts.report_only:
        records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
        write_report(records, out)
        return out
    if opts.device == "cuda":
        import glob

        if not glob.glob("/dev/nvidia[0-9]*"):
            raise SystemExit("--device cuda: no NVIDIA GPU is visible on this machine (/dev/nvidia*); run the CPU suite instead")
    plan = make_plan(opts.device, opts.quick, opts.repeats, opts.scaling_100k)
    rec = Recorder(out / "results.jsonl", log)
    started = time.perf_counter()
    try:
        rec.add(machine_record(opts, plan))
        suite = Suite(opts, plan, rec, log)
        suite.run_gemm("start")
        todo = [s for s in SECTIONS if s in opts.only]
        try:
            for i, section in enumerate(todo):
                t = time.perf_counter()
                getattr(suite, f"run_{section}")()
                rec.add({"type": "section", "section": section, "seconds": round(time.perf_counter() - t, 1)})
                if not opts.quick:
                    suite.run_gemm(f"after {section}")
                # stop the processes no later section uses (frees memory before BERT-base and scaling)
                suite.pool.release([c for later in todo[i + 1:] for c in suite.needs(later)])
        finally:
            suite.pool.close()
        suite.run_gemm("end")
        # the report computes utilization against the best rate seen (start or end)
        rec.add({"type": "gemm", **suite.rates})
        rec.add({"type": "end", "seconds": round(time.perf_counter() - started, 1),
                 "loadavg_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None})
    finally:
        rec.close()
    write_report(rec.records, out)
    log(f"wrote {out / 'report.md'} in {time.perf_counter() - started:.0f}s")
    return out
