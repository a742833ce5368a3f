"""The machine's measured matmul rate and the matmul FLOPs of a BERT-style encoder, to turn tokens/s into utilization.

Utilization = useful FLOPs per second / measured GEMM rate, where useful FLOPs count only the matmuls on real
(non-pad) tokens at each text's real length. Padding, softmax, layer norms and GELU are not counted: a system that
pads more or runs slow elementwise code shows a lower utilization.
"""
from __future__ import annotations

import time

import numpy as np


def sgemm_gflops(n: int = 2048, repeats: int = 10, threads: int | None = None) -> float:
    """Best-of-repeats fp32 GEMM rate in GFLOP/s: numpy (OpenBLAS) on two n x n matrices.

    threads limits OpenBLAS when threadpoolctl is installed; otherwise numpy uses its default (all cores here).
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    ctx = _blas_limit(threads)
    with ctx:
        a @ b  # warm-up: thread pool start, page faults
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best / 1e9


def ort_sgemm_gflops(n: int = 2048, repeats: int = 10, threads: int | None = None) -> float | None:
    """Best-of-repeats fp32 MatMul rate in GFLOP/s through onnxruntime's CPU provider (MLAS: the kernels the engine runs).

    On AVX-512 machines MLAS can be twice as fast as the OpenBLAS build numpy ships, so both are measured and the
    best is the machine's rate. None when onnxruntime or onnx is missing.
    """
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "sgemm",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime this project supports
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or 0
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {"a": rng.standard_normal((n, n), dtype=np.float32), "b": rng.standard_normal((n, n), dtype=np.float32)}
    sess.run(None, feed)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        sess.run(None, feed)
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best / 1e9


def ov_gemm_gflops(hint: str = "bf16", n: int = 2048, repeats: int = 10, threads: int | None = None) -> float | None:
    """Best-of-repeats MatMul rate in GFLOP/s through OpenVINO's CPU plugin with INFERENCE_PRECISION_HINT hint
    ("bf16": oneDNN's AMX / AVX512-BF16 kernels, what the engine's bf16 backend runs; "f32"). The inputs are f32; the
    plugin converts them to bf16 inside the timed call (O(n^2) against the O(n^3) product). None without openvino."""
    try:
        import openvino as ov
        from openvino import opset13 as ops
    except ImportError:
        return None
    a, b = (ops.parameter([n, n], ov.Type.f32, name=x) for x in ("a", "b"))
    model = ov.Model([ops.matmul(a, b, False, False)], [a, b], "gemm")
    config = {"INFERENCE_PRECISION_HINT": hint, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    request = ov.Core().compile_model(model, "CPU", config).create_infer_request()
    rng = np.random.default_rng(0)
    feed = [rng.standard_normal((n, n), dtype=np.float32) for _ in range(2)]
    request.infer(feed, share_inputs=True)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        request.infer(feed, share_inputs=True)
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best / 1e9


def torch_cpu_bf16_gflops(n: int = 4096, repeats: int = 5, threads: int | None = None) -> float | None:
    """Best-of-repeats torch bf16 matmul rate on CPU in GFLOP/s (oneDNN; AMX where the CPU has it). None without torch."""
    try:
        import torch
    except ImportError:
        return None
    if threads:
        torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    a = torch.randn((n, n), generator=g).to(torch.bfloat16)
    b = torch.randn((n, n), generator=g).to(torch.bfloat16)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best / 1e9


def _blas_limit(threads: int | None):
    """A context that limits BLAS threads, or a no-op."""
    import contextlib

    if not threads:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def torch_matmul_tflops(device: str = "cuda", dtype: str = "float16", n: int = 8192, repeats: int = 20) -> float:
    """Best-of-repeats torch matmul rate in TFLOP/s (fp16 on GPU: the rate the tensor cores really give)."""
    import torch

    dt = getattr(torch, dtype)
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn((n, n), device=device, dtype=dt, generator=g)
    b = torch.randn((n, n), device=device, dtype=dt, generator=g)
    for _ in range(3):
        a @ b
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best / 1e12


def bf16_rates(threads: int | None = None) -> dict:
    """On a CPU with bf16 units (amx_bf16 / avx512_bf16): the bf16 matmul rates, OpenVINO (2048 and 4096 square) and
    torch (4096), and bf16_gflops = the best, with the CPU's matrix flags. Elsewhere only the flags (bf16 is never
    emulated, so there is no bf16 rate to divide by)."""
    from export.cpu import bf16_units, cpu_flags

    flags = cpu_flags()
    matrix = sorted(f for f in flags if f.startswith(("amx", "avx512_bf16", "avx512_vnni", "avx512_fp16", "avx_vnni")))
    out: dict = {"cpu_matrix_flags": " ".join(matrix)}
    if not bf16_units(flags):
        return out
    for n in (2048, 4096):
        rate = ov_gemm_gflops("bf16", n=n, repeats=10 if n == 2048 else 4, threads=threads)
        if rate:
            out[f"ov_bf16_gflops_{n}"] = round(rate, 1)
    rate = torch_cpu_bf16_gflops(threads=threads)
    if rate:
        out["torch_bf16_gflops"] = round(rate, 1)
    rates = [v for k, v in out.items() if k.endswith("gflops") or "_gflops_" in k]
    if rates:
        out["bf16_gflops"] = max(rates)
    return out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def measure(device: str = "cpu", threads: int | None = None) -> dict:
    """The machine's reference matmul rates: fp32 on CPU (numpy/OpenBLAS and onnxruntime/MLAS; fp32_gflops = the best),
    torch fp16 and fp32 matmul on CUDA."""
    out = {"sgemm_gflops": round(sgemm_gflops(threads=threads), 1), "sgemm_n": 2048, "sgemm_threads": threads or "numpy default"}
    ort_rate = ort_sgemm_gflops(threads=threads)
    if ort_rate:
        out["ort_sgemm_gflops"] = round(ort_rate, 1)
    out["fp32_gflops"] = max(out["sgemm_gflops"], out.get("ort_sgemm_gflops", 0))
    if device == "cpu":
        out |= bf16_rates(threads)
    if device == "cuda":
        try:
            out["gpu_fp16_tflops"] = round(torch_matmul_tflops("cuda", "float16"), 1)
            out["gpu_fp32_tflops"] = round(torch_matmul_tflops("cuda", "float32", n=4096), 1)
        except Exception as err:  # noqa: BLE001 - keep the CPU numbers; the report says why the GPU ones are missing
            out["gpu_error"] = f"{type(err).__name__}: {str(err).splitlines()[0]}"
        try:
            import torch

            out["gpu_tf32_enabled"] = bool(torch.backends.cuda.matmul.allow_tf32)
        except Exception:  # noqa: BLE001 - informational only
            pass
    return out


# ---------------------------------------------------------------------------------------------------------------------
# FLOPs of a BERT-style encoder


def layer_flops_per_token(hidden: int, intermediate: int) -> int:
    """Matmul FLOPs per token per layer that do not depend on length: Q, K, V, output projection, two FFN matmuls."""
    return 2 * (4 * hidden * hidden + 2 * hidden * intermediate)


def text_flops(length: int, hidden: int, intermediate: int, layers: int) -> int:
    """Matmul FLOPs of one text of `length` real tokens: projections + FFN, plus QK^T and AV (2 * 2 * T * H per token)."""
    return layers * (length * layer_flops_per_token(hidden, intermediate) + 4 * length * length * hidden)


def corpus_flops(lengths, cfg: dict) -> float:
    """Useful matmul FLOPs to encode texts of these real lengths (already truncated to max_length)."""
    lengths = np.asarray(lengths, dtype=np.float64)
    h, i, n = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    return float(n * (lengths.sum() * layer_flops_per_token(h, i) + 4.0 * (lengths**2).sum() * h))


def flops_per_token(cfg: dict, length: float) -> float:
    """Matmul FLOPs per token of a text of `length` tokens (what the issue's '~22 MFLOP per token' means)."""
    return text_flops(int(round(length)), cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]) / max(length, 1)


def model_config(folder) -> dict:
    """hidden / intermediate / layers / heads from a model or export folder's config.json."""
    import json
    from pathlib import Path

    cfg = json.loads((Path(folder) / "config.json").read_text())
    return {k: cfg[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")}


def measure_in_subprocess(device: str = "cpu", threads: int | None = None, timeout: float = 300) -> dict:
    """measure() in a fresh interpreter whose BLAS thread pools are limited to `threads` before numpy loads."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
    cmd = [sys.executable, "-m", "benchmarks.gemm", "--device", device] + (["--threads", str(threads)] if threads else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"GEMM measurement failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """python -m benchmarks.gemm [--device cuda] [--threads N]: print the measured rates as one JSON line."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m benchmarks.gemm", description=main.__doc__)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=None, help="BLAS threads (set OPENBLAS_NUM_THREADS before starting too)")
    args = p.parse_args(argv)
    print(json.dumps(measure(args.device, args.threads)))


if __name__ == "__main__":
    main()
