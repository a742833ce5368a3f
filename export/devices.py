"""Whether a CUDA device is really usable: shared by the exporter's fp16 validation and the runtime's 'auto' device."""
from __future__ import annotations

import glob


def gpu_visible() -> bool:
    """True when an NVIDIA device node exists and onnxruntime has CUDA (onnxruntime-gpu lists it even without a GPU)."""
    import onnxruntime as ort

    return bool(glob.glob("/dev/nvidia[0-9]*")) and "CUDAExecutionProvider" in ort.get_available_providers()
