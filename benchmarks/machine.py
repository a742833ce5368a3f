"""The machine a run measures: its slug (the results folder name) and the 'meta' record."""
from __future__ import annotations

import json
import os
import platform
import re
import time
from pathlib import Path

from .options import Options
from .plan import Plan

# the packages whose versions the meta record keeps, in the order the report lists them
PACKAGES = ("embedding-engine", "onnxruntime", "onnxruntime-gpu", "torch", "transformers", "sentence-transformers",
            "tokenizers", "numpy", "matplotlib")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name() -> str | None:
    """The first GPU's name from nvidia-smi, or None without one."""
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


FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8")


def cpu_flags() -> list[str]:
    """The instruction-set flags that decide onnxruntime's kernels (from /proc/cpuinfo; empty elsewhere)."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in FLAGS if f in have]
    except OSError:
        pass
    return []


def isa_tag() -> str:
    """avx512 or avx2 (onnxruntime's fp32 and int8 speed differ about 2x between them), else baseline."""
    flags = cpu_flags()
    return "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "baseline"


def machine_slug(device: str) -> str:
    """cpu-<cpu model>-<cores>c-<avx512|avx2>, or gpu-<model> (gpu-h100 for any H100)."""
    if device == "cuda":
        name = gpu_name() or "unknown"
        m = re.search(r"\b([ABHL]\d{2,3}|V100|T4)\b", name.upper())
        return f"gpu-{m.group(1).lower()}" if m else f"gpu-{_slug(name.replace('NVIDIA', ''))}"
    return f"cpu-{_slug(cpu_model())}-{os.cpu_count()}c-{isa_tag()}"


def run_context(device: str = "cpu") -> dict:
    """Where a one-off benchmark ran, as its saved result records it: machine slug, CPU, cores, CPU flags, Python and
    the load average now (call it at the end of the run)."""
    return {"machine": machine_slug(device), "cpu": cpu_model(), "cpu_count": os.cpu_count(), "cpu_flags": cpu_flags(),
            "python": platform.python_version(), "loadavg": os.getloadavg()}


def save_result(results: Path, name: str, result: dict, markdown: str) -> Path:
    """Write results/<machine>/<name>.json and <name>.md, print the report, and return the .md path."""
    folder = results / result["machine"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (folder / f"{name}.md").write_text(markdown)
    print(markdown)
    return folder / f"{name}.md"


def machine_record(opts: Options, plan: Plan) -> dict:
    import importlib.metadata as md

    versions = {}
    for pkg in PACKAGES:
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
        "cpu_flags": cpu_flags(), "onnxruntime_build": _ort_build(),
        "gpu": gpu_name() if opts.device == "cuda" else None, "device": opts.device, "threads": opts.threads,
        "quick": opts.quick, "repeats": plan.repeats, "sections": list(opts.only), "python": platform.python_version(),
        "platform": platform.platform(), "versions": versions, "loadavg_at_start": load,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "plan": _plan_dict(plan),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def _ort_build() -> dict:
    """onnxruntime's version, device and execution providers (its build info)."""
    import onnxruntime as ort

    return {"version": ort.__version__, "device": ort.get_device(), "providers": ort.get_available_providers()}


def _plan_dict(plan: Plan) -> dict:
    d = dict(plan.__dict__)
    d["budget_corpus"] = list(plan.budget_corpus)
    return d
