"""Lower a fused fp32 graph to fp16 (for CUDA); int8 (for CPU) lives in int8.py."""
from __future__ import annotations

from pathlib import Path

import onnx

# Reductions and normalizations stay fp32: sums over 512 tokens and variances overflow or lose precision in fp16.
FP16_KEEP_FP32 = ["LayerNormalization", "Softmax", "ReduceSum", "ReduceMean", "ReduceMax", "ReduceL2", "Div", "Clip", "Sqrt", "Pow"]


def to_fp16(src: Path, dst: Path, large: bool) -> None:
    """fp16 weights and activations; graph inputs and outputs stay int64 / fp32."""
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(onnx.load(str(src)))
    model.convert_float_to_float16(keep_io_types=True, op_block_list=FP16_KEEP_FP32)
    model.save_model_to_file(str(dst), use_external_data_format=large)
