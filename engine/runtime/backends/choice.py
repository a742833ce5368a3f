"""Which backend runs an export, and why: the backend option (auto, onnxruntime, openvino) against the export's
precision, the device and the CPU (export.cpu). Pure: it opens nothing, so the bulk job's fingerprint and the
first-use export's precision come from the same answer as the backend that is then opened.

What runs has passed a parity gate: an fp32 (fp16, int8) export's gate ran onnxruntime, so auto keeps onnxruntime for
it (today's path, unchanged); a bf16 export's gate ran OpenVINO's bf16 hint on a CPU with bf16 units, so it runs there
and nowhere else. On such a CPU with openvino installed, a model folder is exported bf16 on first use
(first_use_precision), which is how the default Embedder() gets the fast path.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from export.cpu import bf16_refusal, bf16_units, cpu_flags
from export.options import OPENVINO_PRECISIONS

from ...config import EmbedderConfig
from ...errors import ConfigError, MissingExtraError

OPENVINO_PIP = "pip install 'embedding-engine[openvino]'"


@dataclass(frozen=True)
class BackendChoice:
    """name: 'onnxruntime' or 'openvino'; precision: the export precision it computes at; reason: why, in words."""

    name: str
    precision: str
    reason: str

    @property
    def label(self) -> str:
        return f"{self.name} {self.precision}"

    def record(self) -> dict:
        """As engine embed records it (_SUCCESS, the summary) and the server shows it (/info)."""
        return {"backend": self.name, "precision": self.precision, "reason": self.reason}


def openvino_installed() -> bool:
    try:
        return importlib.util.find_spec("openvino") is not None
    except (ImportError, ValueError):
        return False


def choose_backend(requested: str, device: str, precision: str, flags: frozenset[str] | None = None,
                   installed: bool | None = None) -> BackendChoice:
    """The backend for an export of this precision: requested is the backend option, device the device option ('auto',
    'cpu', 'cuda'); flags and installed replace the CPU's flags and whether openvino imports (tests)."""
    installed = openvino_installed() if installed is None else installed
    if requested == "onnxruntime":
        if precision == "bf16":
            raise ConfigError("this export is bf16, which runs only on the openvino backend (its parity gate measured "
                              "OpenVINO's bf16 there; onnxruntime would compute it in fp32, unvalidated); pass "
                              "--backend openvino (or auto), or use an fp32 export")
        return BackendChoice("onnxruntime", precision, "asked for (backend onnxruntime)")
    if requested == "openvino":
        _check_openvino(device, precision, flags, installed, "backend openvino")
        return BackendChoice("openvino", precision, "asked for (backend openvino)")
    if precision == "bf16":
        _check_openvino(device, precision, flags, installed, "a bf16 export")
        units = " and ".join(bf16_units(cpu_flags() if flags is None else flags))
        return BackendChoice("openvino", "bf16", f"bf16 export, validated with OpenVINO bf16; this CPU has {units}")
    return BackendChoice("onnxruntime", precision, _why_onnxruntime(device, precision, flags, installed))


def first_use_precision(cfg: EmbedderConfig, flags: frozenset[str] | None = None, installed: bool | None = None) -> str:
    """The precision a model folder is exported at on first use: the one asked for; else bf16 where the openvino
    backend may run it (backend auto or openvino, a CPU device, bf16 units, openvino installed); else fp32."""
    if cfg.precision is not None:
        return cfg.precision
    installed = openvino_installed() if installed is None else installed
    if cfg.backend == "onnxruntime" or not installed or bf16_refusal(cpu_flags() if flags is None else flags):
        return "fp32"
    return "bf16" if _cpu_device(cfg.device) else "fp32"


def _check_openvino(device: str, precision: str, flags, installed: bool, what: str) -> None:
    """Refuse what the openvino backend cannot run here: a CUDA device, a precision it was not validated at, a
    missing package, bf16 on a CPU without the units."""
    if device == "cuda":
        raise ConfigError(f"{what} runs on CPU with OpenVINO, not on CUDA; pass --device cpu (or auto)"
                          + ("" if precision == "bf16" else ", or --backend onnxruntime for CUDA"))
    if precision not in OPENVINO_PRECISIONS:
        raise ConfigError(f"the openvino backend runs {' and '.join(OPENVINO_PRECISIONS)} exports; this one is "
                          f"{precision}, validated with onnxruntime: pass --backend onnxruntime (or auto)")
    if not installed:
        raise MissingExtraError(f"{what} needs 'openvino', which is not installed; install it with {OPENVINO_PIP}")
    if precision == "bf16":
        refusal = bf16_refusal(flags)
        if refusal:
            raise ConfigError(f"this export is bf16 and cannot run here: {refusal}")


def _why_onnxruntime(device: str, precision: str, flags, installed: bool) -> str:
    if device == "cuda" or not _cpu_device(device):
        return "CUDA device (onnxruntime's CUDA provider)"
    if precision != "fp32":
        return f"{precision} export, validated with onnxruntime"
    if bf16_refusal(flags):
        return "fp32 export; this CPU has no bf16 units (amx_bf16, avx512_bf16)"
    if not installed:
        return f"fp32 export; openvino is not installed (bf16 on this CPU needs it: {OPENVINO_PIP})"
    return ("fp32 export, validated with onnxruntime; model folders are exported bf16 on this CPU (or export with "
            "--precision bf16, or pass --backend openvino)")


def _cpu_device(device: str) -> bool:
    """Whether the device option means CPU here ('auto' without a usable CUDA device)."""
    if device == "auto":
        from export.devices import gpu_visible

        return not gpu_visible()
    return device == "cpu"
