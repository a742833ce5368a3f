"""Refuse checkpoints with NaN or infinite weights: their texts would get NaN vectors, silently (one pass over the
state dict, a tensor at a time)."""
from __future__ import annotations

from .errors import ModelSourceError


def non_finite_tensors(named_tensors) -> list[str]:
    """'name (k of n rows non-finite)' for each floating tensor holding a NaN or an infinity."""
    import torch

    found = []
    for name, tensor in named_tensors:
        if not torch.is_floating_point(tensor) or tensor.numel() == 0:
            continue
        if bool(torch.isfinite(tensor).all()):
            continue
        bad = ~torch.isfinite(tensor.detach())
        kinds = "/".join(k for k, hit in (("NaN", bool(torch.isnan(tensor).any())), ("inf", bool(torch.isinf(tensor).any()))) if hit)
        if tensor.dim() >= 2:
            rows = int(bad.reshape(tensor.shape[0], -1).any(1).sum())
            found.append(f"{name} ({rows:,} of {tensor.shape[0]:,} rows hold {kinds})")
        else:
            found.append(f"{name} ({int(bad.sum()):,} of {tensor.numel():,} values are {kinds})")
    return found


def check_finite_weights(named_tensors, where: str) -> None:
    """ModelSourceError naming every non-finite tensor (the first five) of a model or module."""
    found = non_finite_tensors(named_tensors)
    if found:
        shown = "; ".join(found[:5]) + (f"; and {len(found) - 5} more tensors" if len(found) > 5 else "")
        raise ModelSourceError(f"{where}: the checkpoint holds non-finite weights: {shown}. Every text that reaches them "
                               "would get a NaN vector; restore or re-download the checkpoint (or fix those weights)")
