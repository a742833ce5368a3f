"""The OpenVINO backend: the export's embed.onnx as is (dynamic shapes), on CPU, at f32 or bf16.

Compiled by export.ov_session.compile_graph, the same call the exporter's bf16 parity gate makes; OpenVINO's
compiled-model cache (CACHE_DIR) makes a warm start skip compilation. One infer request per thread: an OpenVINO
request is not safe to share between threads, as an onnxruntime session is.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import openvino  # noqa: F401 - this module is where the runtime imports OpenVINO (lint-imports' backend contract)

from export.ov_session import HINTS, compile_graph

from ..backend import feed
from ..batching import Batch
from .cores import physical_cores


class OpenVinoBackend:
    """One compiled model behind the Backend interface; precision is the export precision it computes at."""

    def __init__(self, compiled, precision: str) -> None:
        self.compiled = compiled
        self.precision = precision
        self.device = "cpu"
        self.providers = [f"OpenVINO CPU {HINTS[precision]}"]
        self.inputs = tuple(i.get_any_name() for i in compiled.inputs)
        self.outputs = {o.get_any_name(): tuple(d.get_length() if d.is_static else None for d in o.get_partial_shape())
                        for o in compiled.outputs}
        self._local = threading.local()

    @classmethod
    def open(cls, path: Path, precision: str, threads: int | None, cache_dir: Path | None) -> "OpenVinoBackend":
        """Compile path for CPU at precision ('fp32' or 'bf16'); cache_dir: OpenVINO's compiled-model cache, or None."""
        return cls(compile_graph(path, precision, threads or physical_cores(), cache_dir), precision)

    def run(self, batch: Batch, outputs: Sequence[str]) -> dict[str, np.ndarray]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        arrays = {k: np.ascontiguousarray(v, dtype=np.int64) for k, v in feed(batch, self.inputs).items()}
        request.infer(arrays, share_inputs=True)
        return {name: request.get_tensor(name).data.copy() for name in outputs}
