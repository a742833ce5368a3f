"""Attention masks built with plain tensor ops, for models whose own mask builder cannot be traced.

transformers builds a bidirectional Gemma3's masks (EmbeddingGemma) with torch.vmap over mask functions, which the
TorchScript exporter cannot trace. While tracing, the heads hand the model the same masks built here instead; the
exporter's validation then compares the graph against the model's own masking, run eagerly.
"""
from __future__ import annotations

import torch


def traceable_mask(model, mask: torch.Tensor):
    """What to pass the model as attention_mask: mask (B, T) itself, or a dict of additive (B, 1, T, T) masks."""
    cfg = model.config
    if not (torch.jit.is_tracing() and cfg.model_type == "gemma3_text" and getattr(cfg, "use_bidirectional_attention", False)):
        return mask
    return bidirectional_masks(mask, cfg.sliding_window, model.dtype)


def bidirectional_masks(mask: torch.Tensor, window: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Gemma3 bidirectional: full layers see every real token; sliding layers see real tokens with |q - k| < window.

    mask (B, T) int64 -> {"full_attention", "sliding_attention"}: (B, 1, T, T) float, 0 where attended, dtype's min
    elsewhere (what transformers' eager attention adds to its scores).
    """
    keys = mask.bool()[:, None, None, :]  # (B, 1, 1, T)
    pos = torch.arange(mask.shape[1], device=mask.device)
    near = (pos[:, None] - pos[None, :]).abs() < window  # (T, T)
    zero, low = torch.zeros((), dtype=dtype), torch.tensor(torch.finfo(dtype).min, dtype=dtype)
    full = keys.expand(-1, -1, mask.shape[1], -1)
    return {"full_attention": torch.where(full, zero, low), "sliding_attention": torch.where(full & near, zero, low)}
