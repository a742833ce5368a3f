"""The module traced to a SPLADE model's sparse.onnx (the encoder with its masked-language-model head -> logits ->
activation -> max or sum over the valid tokens), and the export options a sparse encoder refuses."""
from __future__ import annotations

import torch
from torch import nn

from .errors import OptionError
from .masks import traceable_mask
from .options import SPLADE_POOLING

SPARSE_GRAPH = "sparse.onnx"
SPARSE_OUTPUT = "sparse_embedding"  # (B, V) float32: one weight per vocabulary entry, >= 0, mostly 0


class SpladeHead(nn.Module):
    """Encoder + MLM head -> sparse_embedding (B, V) float32, as sentence-transformers' SpladePooling computes it:
    logits * mask -> relu -> log1p (-> log1p again for 'log1p_relu') -> max or sum over the sequence. Padded positions
    become log1p(relu(0)) = 0, which neither max nor sum of non-negative values can pick up."""

    def __init__(self, model: nn.Module, input_names: list[str], pooling: str, activation: str) -> None:
        super().__init__()
        self.model, self.input_names = model, list(input_names)
        self.pooling, self.activation = pooling, activation

    def forward(self, *inputs):
        kwargs = dict(zip(self.input_names, inputs))
        mask = kwargs["attention_mask"]
        kwargs["attention_mask"] = traceable_mask(self.model, mask)
        logits = self.model(**kwargs).logits.float()  # (B, T, V)
        x = torch.log1p(torch.relu(logits * mask.unsqueeze(-1).to(logits.dtype)))
        if self.activation == "log1p_relu":
            x = torch.log1p(x)
        return x.amax(dim=1) if self.pooling == "max" else x.sum(dim=1)  # (B, V)


def check_sparse_options(options) -> None:
    """Refuse the embedding-only export options for a sparse encoder (nothing set is silently ignored)."""
    set_ = [f"--{name.replace('_', '-')}" for name, value in (("normalize", options.normalize),
                                                              ("token_embeddings", options.token_embeddings))
            if value is not None]
    if options.pooling not in (None, SPLADE_POOLING):
        set_.insert(0, f"--pooling {options.pooling}")
    if options.last_k != 4:
        set_.append("--last-k")
    if set_:
        raise OptionError(f"{options.model} is exported as a SPLADE sparse encoder (vocabulary weights from its "
                          f"masked-language-model head); {', '.join(set_)} only apply to dense embedding models. Omit "
                          "them (the sparse gate is set with --atol, --min-cos and --min-overlap)")
