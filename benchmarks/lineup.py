"""The systems compared on one model, how the report names them and which one is the baseline."""
from __future__ import annotations

from .models import ModelSpec
from .systems import SystemConfig


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
    if device == "cpu":  # its optimum-based backends: rows that say "not installed" where optimum is missing
        for st_backend in ("openvino", "onnx"):
            cfgs.append(SystemConfig(name=f"sentence-transformers {st_backend}", kind="st", st_backend=st_backend, **base))
    for prec, folder in exports.items():
        cfgs.append(SystemConfig(name=f"engine {prec}", kind="engine", precision=prec, export=str(folder), **base))
    if device == "cpu" and "fp32" in exports:  # the fp32 export on OpenVINO, computed in f32
        cfgs.append(SystemConfig(name="engine openvino f32", kind="engine", backend="openvino", export=str(exports["fp32"]), **base))
    if device == "cpu":  # the default Embedder() on the model folder: auto's first-use export (bf16 where the CPU has it)
        cfgs.append(SystemConfig(name="engine auto", kind="engine", precision="auto", export=m, **base))
    if which is not None:
        cfgs = [c for c in cfgs if c.name in which]
    return cfgs


def ref_label(c: SystemConfig) -> str:
    """What a system is, in words, for the report."""
    if c.kind == "hf":
        return f"transformers AutoModel, {c.attn} attention, {c.precision}, batch {c.batch_size}, {c.order} order"
    if c.kind == "st":
        return f"sentence-transformers ({c.st_backend} backend), {c.precision}, batch {c.batch_size} (sorted by characters)"
    if c.precision == "auto":
        return f"engine.Embedder on the model folder, backend auto (the default: first-use export), {c.device}"
    backend = "" if c.backend == "auto" else f", backend {c.backend}"
    return (f"engine.Embedder, {c.precision} export{backend}, {c.device}, "
            f"max_batch_tokens {c.max_batch_tokens or 'default (4096 on CPU, 32768 on CUDA)'}")


def baseline_name(device: str, names: list[str]) -> str | None:
    """Ratios are against sentence-transformers on CPU (issue 3) and torch fp16 SDPA sorted batches on GPU."""
    prefs = ["hf sdpa sorted", "sentence-transformers"] if device == "cuda" else ["sentence-transformers", "hf sdpa sorted"]
    return next((p for p in prefs if p in names), None)
