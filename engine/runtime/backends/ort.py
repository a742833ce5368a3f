"""The onnxruntime backend: sessions on CPU or CUDA, the provider really used checked, IO binding on CUDA."""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from export.devices import gpu_visible

from ...errors import ProviderUnavailableError
from ..backend import feed
from ..batching import Batch
from .cores import physical_cores

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
_warned_fallback = False


def choose_device(device: str) -> str:
    """Resolve 'auto' (an EmbedderConfig device, already validated) to 'cuda' when a GPU is visible, else 'cpu'."""
    if device == "auto":
        return "cuda" if gpu_visible() else "cpu"
    return device


def session_options(threads: int | None) -> ort.SessionOptions:
    """CPU threading and memory settings shared by every session."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or physical_cores()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Shapes change every batch: memory patterns would be planned for one shape and then grow per shape seen.
    opts.enable_mem_pattern = False
    opts.log_severity_level = 3
    return opts


def open_session(path: Path, device: str, threads: int | None = None, requested: str | None = None) -> ort.InferenceSession:
    """Create a session on device ('cpu' or 'cuda') and verify the provider it actually got.

    requested is what the user asked for ('auto' or 'cuda'); a CUDA fallback raises for 'cuda' and warns once for 'auto'.
    """
    global _warned_fallback
    opts = session_options(threads)
    if device == "cuda":
        providers = [(CUDA, {"arena_extend_strategy": "kSameAsRequested", "cudnn_conv_algo_search": "HEURISTIC"}), CPU]
    else:
        providers = [CPU]
    try:
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as err:
        if device != "cuda":
            raise
        got, reason = [CPU], f"{type(err).__name__}: {err}"
        sess = None
    else:
        got, reason = sess.get_providers(), "onnxruntime fell back to CPU (no usable GPU, or CUDA 13 / cuDNN 9 libraries missing)"
    if device == "cuda" and got[0] != CUDA:
        msg = f"CUDA requested but the session runs on {got[0]}: {reason}; install onnxruntime-gpu with CUDA 13 and cuDNN 9, or pass --device cpu"
        if requested == "cuda":
            raise ProviderUnavailableError(msg)
        if not _warned_fallback:
            warnings.warn(msg, RuntimeWarning, stacklevel=4)
            _warned_fallback = True
        sess = sess or ort.InferenceSession(str(path), sess_options=opts, providers=[CPU])
    return sess


class OrtBackend:
    """One onnxruntime session behind the Backend interface."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self.providers = session.get_providers()
        self.device = "cuda" if self.providers[0] == CUDA else "cpu"
        self.inputs = tuple(i.name for i in session.get_inputs())
        self.outputs = {o.name: tuple(d if isinstance(d, int) else None for d in o.shape) for o in session.get_outputs()}

    @classmethod
    def open(cls, path: Path, device: str, threads: int | None) -> "OrtBackend":
        """A session on path for device as asked ('auto', 'cpu' or 'cuda')."""
        return cls(open_session(path, choose_device(device), threads, requested=device))

    def run(self, batch: Batch, outputs: Sequence[str]) -> dict[str, np.ndarray]:
        """Run one batch; on CUDA bind inputs and outputs on the device and copy back only the requested outputs."""
        arrays = feed(batch, self.inputs)
        if self.device != "cuda":
            return dict(zip(outputs, self.session.run(list(outputs), arrays)))
        binding = self.session.io_binding()
        for name, arr in arrays.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(arr, "cuda", 0))
        for name in outputs:
            binding.bind_output(name, "cuda")
        self.session.run_with_iobinding(binding)
        return dict(zip(outputs, binding.copy_outputs_to_cpu()))
