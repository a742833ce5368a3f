"""Fuse a traced encoder graph for onnxruntime and count what fused."""
from __future__ import annotations

import collections
from pathlib import Path

import onnx

FUSED_OPS = (
    "EmbedLayerNormalization", "Attention", "MultiHeadAttention", "SkipLayerNormalization",
    "BiasGelu", "FastGelu", "Gelu", "LayerNormalization",
    "SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization", "RotaryEmbedding", "GroupQueryAttention",
)


def fuse_graph(raw: Path, out: Path, num_heads: int, hidden_size: int, large: bool) -> dict:
    """Run onnxruntime's BERT optimizer (it handles every supported encoder) and return op counts."""
    from onnxruntime.transformers import optimizer

    # opt_level=0: graph fusions only; onnxruntime applies its own level at session creation.
    model = optimizer.optimize_model(str(raw), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=0)
    model.save_model_to_file(str(out), use_external_data_format=large)
    return count_ops(out)


def count_ops(path: Path) -> dict:
    """Counts of the fused op types present in a graph (zero counts dropped)."""
    counts = collections.Counter(node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node)
    return {op: counts[op] for op in FUSED_OPS if counts[op]}


def attention_fused(counts: dict, num_layers: int) -> bool:
    """True when every layer's attention became one fused op."""
    return counts.get("Attention", 0) + counts.get("MultiHeadAttention", 0) >= num_layers
