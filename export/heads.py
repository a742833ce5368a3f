"""PyTorch modules wrapped around the encoder so that pooling and normalization are traced into the graph."""
from __future__ import annotations

import torch
from torch import nn

from .masks import traceable_mask


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid tokens: hidden (B, T, H), mask (B, T) -> (B, H)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def masked_max(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over valid tokens; pads are pushed to -1e9 as sentence-transformers does."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m + (1.0 - m) * -1e9).max(dim=1).values


def position_weighted_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid tokens weighted by position 1..T (sentence-transformers 'weightedmean')."""
    positions = torch.arange(1, hidden.shape[1] + 1, dtype=hidden.dtype, device=hidden.device)
    w = mask.to(hidden.dtype) * positions.unsqueeze(0)
    return (hidden * w.unsqueeze(-1)).sum(1) / w.sum(1, keepdim=True).clamp(min=1e-9)


def mean_sqrt_len(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over valid tokens divided by the square root of their count (sentence-transformers 'mean_sqrt_len_tokens')."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9).sqrt()


def last_token(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The last valid token of each right-padded row (position from the mask): hidden (B, T, H) -> (B, H)."""
    last = (mask.sum(1) - 1).clamp(min=0)  # (B,)
    index = last.view(-1, 1, 1).expand(-1, 1, hidden.shape[-1])
    return hidden.gather(1, index).squeeze(1)


# Poolings that combine with '+' (sentence-transformers concatenates several modes in the order given).
POOL_FUNCTIONS = {"cls": lambda h, m: h[:, 0], "mean": masked_mean, "max": masked_max,
                  "weighted-mean": position_weighted_mean, "mean-sqrt-len": mean_sqrt_len, "lasttoken": last_token}


def pooled_width(pooling: str, hidden_size: int, last_k: int) -> int:
    """Width of the pooled vector, before any Dense module."""
    if pooling == "last-k-concat":
        return hidden_size * last_k
    return hidden_size * len(pooling.split("+"))


def combine_last_k(hidden_states: tuple[torch.Tensor, ...], k: int, how: str) -> torch.Tensor:
    """Combine the last k layers per token: mean or max over layers (B, T, H), or concat along H (B, T, k*H)."""
    layers = hidden_states[-k:]
    if how == "concat":
        return torch.cat(layers, dim=-1)
    stacked = torch.stack(layers, dim=0)  # (k, B, T, H)
    return stacked.mean(0) if how == "mean" else stacked.max(0).values


class EmbedHead(nn.Module):
    """Encoder + pooling (+ sentence-transformers Dense layers) (+ L2 normalization)
    -> sentence_embedding (B, D) [, token_embeddings (B, T, H)].

    pooling is one mode, or several joined by '+' whose vectors are concatenated; the runtime pads on the right, so
    'lasttoken' takes each row's last valid position from the mask.
    """

    def __init__(self, model: nn.Module, input_names: list[str], pooling: str, normalize: bool,
                 last_k: int = 4, token_embeddings: bool = False, dense: list[nn.Module] | None = None) -> None:
        super().__init__()
        self.model, self.input_names = model, list(input_names)
        self.pooling, self.normalize, self.last_k, self.token_embeddings = pooling, normalize, last_k, token_embeddings
        self.dense = nn.ModuleList(dense or [])

    def forward(self, *inputs: torch.Tensor):
        kwargs = dict(zip(self.input_names, inputs))
        mask = kwargs["attention_mask"]
        kwargs["attention_mask"] = traceable_mask(self.model, mask)
        out = self.model(**kwargs, output_hidden_states=self.pooling.startswith("last-k"))
        hidden = out.last_hidden_state  # (B, T, H)
        if self.pooling == "pooler":
            emb = out.pooler_output
        elif self.pooling.startswith("last-k"):  # last-k-mean / last-k-max / last-k-concat
            emb = masked_mean(combine_last_k(out.hidden_states, self.last_k, self.pooling.rsplit("-", 1)[1]), mask)
        else:
            parts = [POOL_FUNCTIONS[mode](hidden, mask) for mode in self.pooling.split("+")]
            emb = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        for layer in self.dense:
            emb = layer(emb)
        if self.normalize:
            emb = nn.functional.normalize(emb, p=2.0, dim=1)
        return (emb, hidden) if self.token_embeddings else emb

    def output_dim(self, hidden_size: int) -> int:
        """Width of sentence_embedding."""
        return self.dense[-1].out_features if self.dense else pooled_width(self.pooling, hidden_size, self.last_k)


class InspectHead(nn.Module):
    """Encoder -> last_hidden_state (B,T,H), hidden_states (L+1,B,T,H), attentions (L,B,heads,T,T)."""

    def __init__(self, model: nn.Module, input_names: list[str]) -> None:
        super().__init__()
        self.model, self.input_names = model, list(input_names)

    def forward(self, *inputs: torch.Tensor):
        kwargs = dict(zip(self.input_names, inputs))
        kwargs["attention_mask"] = traceable_mask(self.model, kwargs["attention_mask"])
        out = self.model(**kwargs, output_hidden_states=True, output_attentions=True)
        return out.last_hidden_state, torch.stack(out.hidden_states), torch.stack(out.attentions)
