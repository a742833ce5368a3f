"""What the CPU can compute natively: its feature flags, and whether it has bf16 units (the bf16 precision's check).

Shared by the exporter (a bf16 export is validated on the machine that exports, so it needs the units there) and the
runtime (the openvino backend's bf16 hint and the 'auto' backend's choice). ENGINE_CPU_FLAGS, a space- or
comma-separated list, replaces the detected flags (tests force a CPU with or without bf16 this way).
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

# AMX tiles (Sapphire Rapids and later) or AVX512-BF16 (Cooper Lake, AMD Zen 4 and later): bf16 dot products in hardware.
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
FLAGS_ENV = "ENGINE_CPU_FLAGS"


def cpu_flags(flags: str | None = None) -> frozenset[str]:
    """The CPU's feature flags: flags if given, else $ENGINE_CPU_FLAGS if set, else /proc/cpuinfo's first 'flags'
    (x86) or 'Features' (ARM) line; empty where neither is readable."""
    text = flags if flags is not None else os.environ.get(FLAGS_ENV)
    if text is None:
        text = _proc_flags()
    return frozenset(text.replace(",", " ").split())


def bf16_units(flags: frozenset[str] | None = None) -> tuple[str, ...]:
    """The bf16 flags this CPU has (amx_bf16, avx512_bf16), empty on a CPU without bf16 units."""
    have = cpu_flags() if flags is None else flags
    return tuple(f for f in BF16_FLAGS if f in have)


def bf16_refusal(flags: frozenset[str] | None = None) -> str | None:
    """Why bf16 cannot run here (None when it can): it is never emulated on a CPU without the units."""
    if bf16_units(flags):
        return None
    return (f"precision bf16 needs a CPU with bf16 units ({' or '.join(BF16_FLAGS)}; Intel Xeon since Sapphire Rapids, "
            f"AMD EPYC since Zen 4); this {platform.machine() or 'CPU'} has neither, and bf16 is never emulated: use "
            f"--precision fp32 (or int8)")


def _proc_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return value
    return ""
