"""The module traced to a cross-encoder's score.onnx (the encoder with its sequence-classification head -> raw logits),
and the export options a cross-encoder refuses."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from .errors import OptionError
from .masks import traceable_mask

SCORE_GRAPH = "score.onnx"
SCORE_OUTPUT = "scores"  # (B, num_labels) float32 logits; the activation is applied by the runtime (predict's activation_fn)


class ScoreHead(nn.Module):
    """Encoder + sequence-classification head -> scores (B, num_labels) float32 logits."""

    def __init__(self, model: nn.Module, input_names: list[str]) -> None:
        super().__init__()
        self.model, self.input_names = model, list(input_names)

    def forward(self, *inputs):
        kwargs = dict(zip(self.input_names, inputs))
        kwargs["attention_mask"] = traceable_mask(self.model, kwargs["attention_mask"])
        return self.model(**kwargs).logits.float()


def check_rerank_options(options) -> None:
    """Refuse the embedding-only export options for a cross-encoder (nothing set is silently ignored)."""
    set_ = [f"--{name.replace('_', '-')}" for name, value in (("pooling", options.pooling), ("normalize", options.normalize),
                                                              ("token_embeddings", options.token_embeddings),
                                                              ("min_cos", options.min_cos)) if value is not None]
    if options.last_k != 4:
        set_.append("--last-k")
    if set_:
        raise OptionError(f"{options.model} is a cross-encoder (a sequence-classification head: it scores text pairs); "
                          f"{', '.join(set_)} only apply to embedding models. Omit them (the score gate is set with "
                          "--atol and --min-overlap)")
