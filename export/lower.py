"""The last step of every export: the fused fp32 graph written at the requested precision."""
from __future__ import annotations

from pathlib import Path

from .graphs import place_graph
from .int8 import to_int8
from .precision import to_fp16


def lower(fused: Path, dst: Path, precision: str, large: bool) -> dict | None:
    """Write the fused fp32 graph to dst at the requested precision (weights in dst.name + '.data' when large).

    Returns what an int8 recipe did (for the manifest), else None.
    """
    if precision in ("fp32", "bf16"):  # bf16: the fp32 graph; OpenVINO computes it in bf16 (validated so)
        place_graph(fused, dst, large)
    elif precision == "fp16":
        to_fp16(fused, dst, large)
    else:
        return to_int8(fused, dst, large, recipe=precision)
    return None
