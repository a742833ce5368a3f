"""int8 recipes for CPUs with AMX / AVX512-BF16 (issue 24): onnxruntime's two int8 recipes (export/int8.py) against
OpenVINO bf16 and NNCF's (weight-only int8, static int8 with real-text calibration, SmoothQuant alphas, layers kept
in bf16), all on the engine's own fp32 all-MiniLM-L6-v2 embed.onnx.

python -m benchmarks.int8_recipes [--rounds 3] [--only NAME,...] [--work /tmp/int8_recipes]

Quality: cosine of each text's sentence embedding to onnxruntime fp32 (mean, min) and top-10 neighbour overlap
(export.validate.neighbour_overlap) on the exporter's 336 shipped parity texts and on 1,000 other real paragraphs
(held out: neither parity nor calibration texts). Speed: real (non-padding) tokens per second of the model runs alone
over the parity texts in length-sorted batches of 32 (max_length 256, 2 threads), every system once per round,
rounds interleaved, medians; `uptime` before each round. Results: benchmarks/results/<cpu>/int8_recipes.md.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

from export.parity_texts import parity_texts
from export.validate import neighbour_overlap

from .corpus import bundled_model_path, mixed_texts
from .machine import cpu_flags, cpu_model

MAX_LENGTH, BATCH, THREADS = 256, 32, 2
OUT = Path(__file__).parent / "results" / "cpu-intel-xeon-2c-amx" / "int8_recipes.md"


def _batches(folder: Path, texts: list[str]) -> list[dict]:
    """Length-sorted padded batches; each carries its row order and real-token count."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_truncation(MAX_LENGTH)
    tok.no_padding()
    enc = tok.encode_batch(list(texts))
    order = sorted(range(len(texts)), key=lambda i: len(enc[i].ids))
    out = []
    for s in range(0, len(order), BATCH):
        idx = order[s:s + BATCH]
        t = max(len(enc[i].ids) for i in idx)
        feed = {n: np.zeros((len(idx), t), np.int64) for n in ("input_ids", "token_type_ids", "attention_mask")}
        for r, i in enumerate(idx):
            n = len(enc[i].ids)
            feed["input_ids"][r, :n], feed["attention_mask"][r, :n] = enc[i].ids, 1
        out.append({"idx": idx, "feed": feed, "tokens": int(feed["attention_mask"].sum())})
    return out


class Ort:
    def __init__(self, graph: Path):
        import onnxruntime as ort

        o = ort.SessionOptions()
        o.intra_op_num_threads, o.inter_op_num_threads, o.log_severity_level = THREADS, 1, 3
        self.sess = ort.InferenceSession(str(graph), o, providers=["CPUExecutionProvider"])
        self.names = {i.name for i in self.sess.get_inputs()}

    def __call__(self, feed):
        return self.sess.run(["sentence_embedding"], {k: v for k, v in feed.items() if k in self.names})[0]


class Ov:
    def __init__(self, model, precision: str = "bf16"):
        import openvino as ov

        core = ov.Core()
        cfg = {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": THREADS, "NUM_STREAMS": 1,
               "PERFORMANCE_HINT": "LATENCY"}
        self.compiled = core.compile_model(model, "CPU", cfg)
        self.names = {p.get_any_name() for p in self.compiled.inputs}
        self.req = self.compiled.create_infer_request()

    def __call__(self, feed):
        res = self.req.infer({k: v for k, v in feed.items() if k in self.names})
        return np.asarray(res[self.compiled.output("sentence_embedding")])


def _calibration(batches: list[dict]):
    import nncf

    return nncf.Dataset([b["feed"] for b in batches])


def _layer_matmuls(model, layers=None, kinds=("attention/output", "intermediate", "output/dense")) -> list[str]:
    """Friendly names of the named MatMuls of the given encoder layers (all when layers is None)."""
    out = []
    for n in model.get_ordered_ops():
        name = n.get_friendly_name()
        if n.get_type_name() == "MatMul" and "/encoder/layer." in name:
            layer = int(name.split("/encoder/layer.")[1].split("/")[0])
            if (layers is None or layer in layers) and any(f"/{k}/" in name for k in kinds):
                if not (kinds == ("output/dense",) and "/attention/output/" in name):
                    out.append(name)
    return out


def _recipes(work: Path, fp32: Path, calib) -> dict:
    """name -> (description, builder() -> runner)."""
    import nncf
    import openvino as ov

    from export.int8 import to_int8

    def read():
        return ov.Core().read_model(str(fp32))

    def ort_int8(recipe):
        def build():
            dst = work / f"ort-{recipe}.onnx"
            if not dst.exists():
                to_int8(fp32, dst, large=False, recipe=recipe)
            return Ort(dst)
        return build

    def nncf_ir(name, make):
        def build():
            xml = work / f"{name}-t1.xml"  # t1: calibrated one text per sample
            if not xml.exists():
                ov.save_model(make(read()), str(xml))
            return Ov(ov.Core().read_model(str(xml)))
        return build

    def static(alpha=None, ignore=None, preset=nncf.QuantizationPreset.MIXED):
        def make(model):
            adv = nncf.AdvancedQuantizationParameters(
                smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(matmul=alpha)) if alpha is not None else None
            scope = nncf.IgnoredScope(names=ignore(model), validate=False) if ignore else None
            return nncf.quantize(model, calib(), model_type=nncf.ModelType.TRANSFORMER, preset=preset,
                                 subset_size=300, ignored_scope=scope, advanced_parameters=adv)
        return make

    ffn_out = lambda m: _layer_matmuls(m, kinds=("output/dense",))  # noqa: E731
    first_last = lambda m: _layer_matmuls(m, layers=(0, 5))  # noqa: E731
    return {
        "ort-fp32": ("onnxruntime fp32 (reference)", lambda: Ort(fp32)),
        "ort-int8": ("onnxruntime int8 (engine int8)", ort_int8("int8")),
        "ort-int8-fast": ("onnxruntime int8-fast", ort_int8("int8-fast")),
        "ov-bf16": ("OpenVINO, bf16 hint", lambda: Ov(read())),
        "ov-w8": ("NNCF int8 weights only (INT8_ASYM), bf16 hint", nncf_ir(
            "w8", lambda m: nncf.compress_weights(m, mode=nncf.CompressWeightsMode.INT8_ASYM))),
        "ov-w8-sym": ("NNCF int8 weights only (INT8_SYM), bf16 hint", nncf_ir(
            "w8sym", lambda m: nncf.compress_weights(m, mode=nncf.CompressWeightsMode.INT8_SYM))),
        "ov-static": ("NNCF static int8, TRANSFORMER, SmoothQuant default (0.95)", nncf_ir("static", static())),
        "ov-static-sq0.5": ("NNCF static int8, SmoothQuant alpha 0.5", nncf_ir("static-sq05", static(0.5))),
        "ov-static-nosq": ("NNCF static int8, SmoothQuant off", nncf_ir("static-nosq", static(-1))),
        "ov-static-ffnout-bf16": ("NNCF static int8, FFN output MatMuls in bf16", nncf_ir(
            "static-ffnout", static(ignore=ffn_out))),
        "ov-static-ffnout-sq0.5": ("NNCF static int8, FFN output MatMuls in bf16, SmoothQuant 0.5", nncf_ir(
            "static-ffnout-sq05", static(0.5, ignore=ffn_out))),
        "ov-static-firstlast-bf16": ("NNCF static int8, layers 0 and 5 in bf16", nncf_ir(
            "static-firstlast", static(ignore=first_last))),
    }


def _embed(run, batches, n: int) -> np.ndarray:
    out = [None] * n
    for b in batches:
        vec = run(b["feed"])
        for r, i in enumerate(b["idx"]):
            out[i] = vec[r]
    return np.stack(out).astype(np.float32)


def _quality(got: np.ndarray, ref: np.ndarray) -> dict:
    a = got / np.linalg.norm(got, axis=1, keepdims=True)
    b = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    cos = (a.astype(np.float64) * b).sum(1)
    return {"mean_cos": float(cos.mean()), "min_cos": float(cos.min()), "overlap": neighbour_overlap(got, ref)}


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.split("load average:")[-1].strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.int8_recipes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=None, help="comma-separated recipe names (ort-fp32 always runs)")
    parser.add_argument("--work", default="/tmp/int8_recipes", help="folder for the fp32 export and built models")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    folder = work / "fp32"
    if not (folder / "manifest.json").exists():
        from export import ExportOptions, export_model

        export_model(ExportOptions(model=str(bundled_model_path()), out_dir=str(folder), overwrite=True))
    parity = list(parity_texts())
    taken = set(parity)
    pool = [t for t in mixed_texts(3000) if t not in taken]
    held, calib_texts = pool[:1000], pool[1000:1300]
    sets = {"parity": (parity, _batches(folder, parity)), "held-out": (held, _batches(folder, held))}
    calib_batches = [b for t in calib_texts for b in _batches(folder, [t])]  # one text per sample: no padding
    recipes = _recipes(work, folder / "embed.onnx", lambda: _calibration(calib_batches))
    names = list(recipes) if not args.only else ["ort-fp32"] + [n for n in args.only.split(",") if n != "ort-fp32"]
    runners, rows, refs = {}, {}, {}
    for name in names:
        t0 = time.time()
        runners[name] = recipes[name][1]()
        rows[name] = {"build_s": time.time() - t0, "tok_s": []}
        for key, (texts, batches) in sets.items():
            vec = _embed(runners[name], batches, len(texts))
            if name == "ort-fp32":
                refs[key] = vec
            rows[name][key] = _quality(vec, refs[key])
        print(name, {k: v for k, v in rows[name].items() if k != "tok_s"}, flush=True)
    loads, speed = [], sets["parity"][1]
    tokens = sum(b["tokens"] for b in speed)
    for r in range(args.rounds):
        loads.append(_load())
        for name in names:
            t0 = time.perf_counter()
            for b in speed:
                runners[name](b["feed"])
            rows[name]["tok_s"].append(tokens / (time.perf_counter() - t0))
        print(f"round {r + 1}: load {loads[-1]}:", {n: round(rows[n]["tok_s"][-1]) for n in names}, flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(_markdown(rows, recipes, names, loads, tokens, len(held), args.rounds))
    print(f"wrote {args.out}")


def _markdown(rows, recipes, names, loads, tokens, n_held, rounds) -> str:
    import nncf
    import onnxruntime
    import openvino

    med = {n: statistics.median(rows[n]["tok_s"]) for n in names}
    bf16 = med.get("ov-bf16")
    lines = [
        "# int8 recipes on a CPU with AMX (issue 24)", "",
        f"CPU: {cpu_model()}, {THREADS} threads; flags: {' '.join(cpu_flags())}. openvino {openvino.__version__}, "
        f"nncf {nncf.__version__}, onnxruntime {onnxruntime.__version__}. Model: all-MiniLM-L6-v2, the engine's fp32 "
        f"embed.onnx (fused), max_length {MAX_LENGTH}.", "",
        f"Quality vs onnxruntime fp32 on the exporter's 336 parity texts and on {n_held} held-out real paragraphs "
        f"(top-10 neighbour overlap within each set). Speed: model runs only, {tokens} real tokens (the parity texts "
        f"in length-sorted batches of {BATCH}), {rounds} interleaved rounds, median (range). Load average before "
        f"each round: {'; '.join(loads)} (the machine is shared: read the ratios).", "",
        "| recipe | what | tok/s median (range) | × OV bf16 | parity mean cos | min cos | top-10 | held-out mean cos | "
        "min cos | top-10 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in names:
        r, p, h = rows[n], rows[n]["parity"], rows[n]["held-out"]
        ratio = f"{med[n] / bf16:.2f}" if bf16 else "-"
        lines.append(f"| {n} | {recipes[n][0]} | {med[n]:,.0f} ({min(r['tok_s']):,.0f}–{max(r['tok_s']):,.0f}) | "
                     f"{ratio} | {p['mean_cos']:.5f} | {p['min_cos']:.4f} | {p['overlap']:.3f} | {h['mean_cos']:.5f} | "
                     f"{h['min_cos']:.4f} | {h['overlap']:.3f} |")
    lines += ["", "Goal (issue 24): int8 ≥ 1.3× OpenVINO bf16, top-10 ≥ 0.97, min cos ≥ 0.98.", "",
              "Reproduce: `python -m benchmarks.int8_recipes` (static recipes calibrate on 300 other real paragraphs).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
