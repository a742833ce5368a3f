"""The suite's sections (speed, length, budget, bert, parity, scaling), sharing one worker pool."""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from . import corpus as C
from .gemm import measure_in_subprocess
from .interleave import interleave, real_lengths, summarize
from .lineup import baseline_name, system_configs
from .models import ModelSpec, bert_base, default_cache, ensure_export, minilm
from .options import Options
from .plan import Plan
from .records import Recorder
from .systems import SystemConfig, available
from .worker import Pool, Worker, WorkerError, proc_status_mb


class Sections:
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
        if self.opts.device == "cuda":
            return ("fp32", "fp16")
        if self.opts.quick:
            return ("fp32", "int8")  # --quick: one int8 recipe is enough
        return ("fp32", "int8", "int8-fast") + (("bf16",) if _bf16_here() else ())

    def model(self, key: str) -> ModelSpec:
        """The model and its engine exports (made once, cached between runs)."""
        if key in self.specs:
            return self.specs[key]
        spec = minilm() if key == "minilm" else bert_base(self.cache, max_length=512 if self.opts.device == "cuda" else 256, log=self.log)
        exports = {}
        for prec in self.engine_precisions():
            if prec == "int8-fast" and key != "minilm":  # the recipe comparison runs on the real model only
                continue
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
            why = available(c.kind, c.st_backend, c.backend)
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
        if section == "speed":  # --quick: one PyTorch reference besides sentence-transformers (each is a process to start)
            return self.systems("minilm", ("hf sdpa sorted", "sentence-transformers") + self._engines() if self.opts.quick else None)
        if section == "length":
            return self.systems("minilm", ("hf sdpa sorted", "sentence-transformers") + self._engines() + self._others())
        if section == "parity":
            return [self.reference_config()] + self.systems("minilm", self._engines() + self._others())
        return []  # budget, bert and scaling use their own processes

    def _engines(self) -> tuple[str, ...]:
        return tuple(f"engine {p}" for p in self.engine_precisions())

    def _others(self) -> tuple[str, ...]:
        """Besides the engine's exports (not in --quick, CPU only): the fp32 export on OpenVINO, the default Embedder()
        (backend auto on the model folder) and sentence-transformers' own openvino and onnx backends."""
        if self.opts.quick or self.opts.device != "cpu":
            return ()
        return ("engine openvino f32", "engine auto", "sentence-transformers openvino", "sentence-transformers onnx")

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
        names = ("hf sdpa sorted", "sentence-transformers") + tuple(e for e in self._engines() if e != "engine int8-fast")
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
        cfgs = [ref_cfg] + self.systems("minilm", self._engines() + self._others())
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


def _bf16_here() -> bool:
    """This CPU has bf16 units and openvino imports: the engine's bf16 export is measured too."""
    import importlib.util

    from export.cpu import bf16_units

    return bool(bf16_units()) and importlib.util.find_spec("openvino") is not None


def _manifest_parity(manifest: dict) -> dict:
    """The exporter's own parity numbers (validation texts), per graph and output."""
    out = {}
    for graph, rep in (manifest.get("parity") or {}).items():
        for name, o in rep.get("outputs", {}).items():
            out[f"{graph}/{name}"] = {k: o.get(k) for k in ("max_abs", "mean_cos", "min_cos")}
    return out
