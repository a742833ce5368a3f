"""Trace the wrapped encoder to ONNX with dynamic batch and sequence axes."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

EMBED_OUTPUTS = ("sentence_embedding", "token_embeddings")
INSPECT_OUTPUTS = ("last_hidden_state", "hidden_states", "attentions")
TWO_GB = 2 * 1024**3


def sample_inputs(input_names: list[str]) -> tuple[torch.Tensor, ...]:
    """A small padded batch for tracing; values are fixed so the same export gives the same graph."""
    ids = torch.tensor([[5, 8, 13, 21, 34, 55, 6, 7], [5, 9, 14, 7, 0, 0, 0, 0]], dtype=torch.long)
    mask = torch.tensor([[1] * 8, [1] * 4 + [0] * 4], dtype=torch.long)
    tensors = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    return tuple(tensors[name] for name in input_names)


def export_graph(head: nn.Module, input_names: list[str], output_names: list[str], path: Path, opset: int,
                 large: bool = False) -> None:
    """Run the TorchScript exporter (it fuses fully under onnxruntime's BERT optimizer) on head.

    With large (weights near 2 GB), the exporter may write weights beside path under names of its own; write to a
    scratch folder and finish with place_graph.
    """
    head.eval()  # the exporter restores the module's training flag afterwards, so it must already be eval
    axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    axes.update({
        "sentence_embedding": {0: "batch"},
        "token_embeddings": {0: "batch", 1: "sequence"},
        "last_hidden_state": {0: "batch", 1: "sequence"},
        "hidden_states": {1: "batch", 2: "sequence"},
        "attentions": {1: "batch", 3: "sequence", 4: "sequence_k"},
    })
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            head, sample_inputs(input_names), str(path), dynamo=False, opset_version=opset,
            input_names=input_names, output_names=output_names,
            dynamic_axes={k: v for k, v in axes.items() if k in input_names or k in output_names},
            do_constant_folding=True, external_data=large,
        )


def place_graph(src: Path, dst: Path, large: bool) -> None:
    """Move a finished graph to dst; with large, its weights go to one file dst.name + '.data' beside it.

    onnx.load pulls external weights in from wherever the writer put them (per-tensor files, '<name>.data'), so
    the export folder ends up with exactly one data file per large graph, named after the graph.
    """
    if not large:
        os.replace(src, dst)
        return
    model = onnx.load(str(src))
    onnx.save_model(model, str(dst), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=dst.name + ".data", size_threshold=1024)
