"""Lower a fused fp32 graph to fp16 (for CUDA) or int8 dynamic quantization (for CPU)."""
from __future__ import annotations

import logging
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


def to_int8(src: Path, dst: Path, large: bool) -> None:
    """Per-channel dynamic int8 quantization of MatMul weights (per-tensor lost ~5% cosine here)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    quiet = _DropMessage("Please consider to run pre-processing")  # static-quantization advice, not for dynamic
    root.addFilter(quiet)
    try:
        quantize_dynamic(
            str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
            use_external_data_format=large,
            # The fused contrib ops carry no type info the quantizer can read; tell it activations are float.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.removeFilter(quiet)


class _DropMessage(logging.Filter):
    """Drop log records whose message starts with a prefix."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)
