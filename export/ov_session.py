"""OpenVINO on CPU, compiled the one way both sides use it: the exporter's bf16 parity gate and the runtime's
openvino backend (engine/runtime/backends/openvino.py) call compile_graph, so the gate measures what is served.

The only module of the export layer that imports openvino (lint-imports holds it to that).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

# An export precision -> OpenVINO's inference precision hint. f32 is always set explicitly: on CPUs with bf16 units
# OpenVINO's own default is bf16, which would run an fp32 export in bf16 without anyone asking.
HINTS = {"fp32": "f32", "bf16": "bf16"}


def compile_graph(path: Path, precision: str, threads: int, cache_dir: Path | None = None):
    """An openvino CompiledModel of the ONNX graph at path on CPU: dynamic shapes as exported, one stream of threads
    threads, the precision's hint; cache_dir (OpenVINO's compiled-model cache) makes a warm start skip compilation."""
    import openvino as ov

    config = {"INFERENCE_PRECISION_HINT": HINTS[precision], "INFERENCE_NUM_THREADS": int(threads), "NUM_STREAMS": 1,
              "PERFORMANCE_HINT": "LATENCY"}
    if cache_dir is not None:
        config["CACHE_DIR"] = str(cache_dir)
    # A path (not a read model): with a cache, OpenVINO finds the compiled blob without parsing the ONNX file.
    return ov.Core().compile_model(str(path), "CPU", config)


def openvino_version() -> str:
    import openvino as ov

    return ov.get_version()


class OvSession:
    """The slice of onnxruntime's InferenceSession the exporter's validation uses (run, get_providers), on OpenVINO."""

    def __init__(self, graph: Path, precision: str, threads: int = 1) -> None:
        self.compiled = compile_graph(graph, precision, threads)
        self.request = self.compiled.create_infer_request()
        self.provider = f"OpenVINO CPU {HINTS[precision]}"

    def get_providers(self) -> list[str]:
        return [self.provider]

    def run(self, output_names: Sequence[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        names = {i.get_any_name() for i in self.compiled.inputs}
        result = self.request.infer({k: v for k, v in feed.items() if k in names})
        by_name = {port.get_any_name(): value for port, value in result.items()}
        return [np.array(by_name[n]) for n in output_names]
