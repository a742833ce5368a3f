"""A cross-encoder's logits as CrossEncoder.predict returns them: the activation, the label squeeze, softmax, and
the answer's type (numpy, a torch tensor, or a list of tensors)."""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .st_outputs import optional_torch

ACTIVATIONS = ("sigmoid", "identity", "tanh")


def _named(name: str, x: NDArray[np.float32]) -> NDArray[np.float32]:
    if name == "sigmoid":
        return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)
    if name == "tanh":
        return np.tanh(x).astype(np.float32)
    if name == "identity":
        return x
    raise ValueError(f"activation {name!r} is not one of {', '.join(ACTIVATIONS)}")


def activate(logits: NDArray[np.float32], fn, apply_softmax: bool = False) -> NDArray[np.float32]:
    """logits (N, L) float32 -> scores: fn (a name, or a callable on a torch tensor, or on numpy without torch), then
    (N,) for one label, or softmax over labels when asked (and L > 1), in CrossEncoder's order."""
    if isinstance(fn, str):
        scores = _named(fn, logits)
    else:
        torch = optional_torch()
        if torch is not None:
            out = fn(torch.from_numpy(np.ascontiguousarray(logits)))
            scores = out.detach().float().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out, np.float32)
        else:
            scores = np.asarray(fn(logits), dtype=np.float32)
    if scores.ndim > 1 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if apply_softmax and scores.ndim > 1:
        z = scores.astype(np.float64) - scores.max(axis=1, keepdims=True)
        scores = (np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)).astype(np.float32)
    return scores


def scores_answer(scores: NDArray[np.float32], single: bool, convert_to_numpy: bool, convert_to_tensor: bool):
    """What CrossEncoder.predict returns: a tensor (convert_to_tensor; numpy without torch), numpy (convert_to_numpy;
    np.array([]) for no pairs), else a list of per-pair tensors; a single pair in gives its own score."""
    torch = optional_torch()
    if convert_to_tensor:
        out = torch.from_numpy(np.ascontiguousarray(scores)) if torch is not None else scores
    elif convert_to_numpy:
        out = scores if len(scores) else np.array([])
    else:
        out = [torch.from_numpy(np.ascontiguousarray(s)) if torch is not None else s for s in scores]
    return out[0] if single else out
