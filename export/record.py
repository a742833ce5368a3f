"""The manifest fields every export records, whatever it exports: where it came from, the model's shape, the graph's
inputs and fusions, the parity report, the files it vouches for and the tools that made it."""
from __future__ import annotations

import time
from pathlib import Path

from . import __version__
from .fusion import attention_fused
from .manifest import FORMAT_VERSION, MANIFEST, sha256_file


def common_fields(options, src, cfg, tokenizer, max_length: int, input_names: list[str], fused: dict, notes: list[str],
                  parity: dict, valid: bool, work: Path) -> dict:
    """The manifest fields shared by embedders and cross-encoders (each adds its task's own)."""
    import onnx
    import onnxruntime
    import torch
    import transformers

    return {
        "format_version": FORMAT_VERSION,
        "valid": bool(valid),
        "source": {"model": src.source, "path": str(src.path), "revision": src.revision, "content_hash": src.content_hash},
        "architecture": src.model_type,
        "layers": cfg.num_hidden_layers,
        "hidden_size": cfg.hidden_size,
        "heads": cfg.num_attention_heads,
        "vocab_size": cfg.vocab_size,
        "max_length": max_length,
        "precision": options.precision,
        "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        "padding_side": "right",  # what the graphs assume; the runtime's batching pads on the right
        "prompts": dict(src.st.prompts),
        "default_prompt_name": src.st.default_prompt_name,
        "inputs": input_names,
        "opset": options.opset,
        "fused_ops": fused,
        "attention_fused": attention_fused(fused, cfg.num_hidden_layers),
        "notes": notes,
        "parity": parity,
        "files": {p.name: sha256_file(p) for p in payload(work)},
        "file_sizes": {p.name: p.stat().st_size for p in payload(work)},
        "options": options.to_dict() | {"out_dir": None, "overwrite": None},
        "tool_versions": {"embedding-engine": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
                          "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__} | _openvino_version(options.precision),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _openvino_version(precision: str) -> dict:
    """{'openvino': version} for exports validated with OpenVINO (bf16), else nothing."""
    if precision != "bf16":
        return {}
    from .ov_session import openvino_version

    return {"openvino": openvino_version()}


def payload(work: Path) -> list[Path]:
    """The files of an export the manifest vouches for (not itself, not the hidden lock)."""
    return [p for p in sorted(work.iterdir()) if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")]
