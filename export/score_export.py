"""export_scorer: a cross-encoder folder -> score.onnx + tokenizer + manifest.json (task "rerank", input "pair"),
validated on real text pairs against the PyTorch head (export/score_validate.py)."""
from __future__ import annotations

import inspect
import shutil
import time
from pathlib import Path

from .errors import ParityError
from .fusion import attention_fused, fuse_graph
from .graphs import TWO_GB, export_graph
from .errors import OptionError
from .loading import load_checked
from .lower import lower
from .manifest import MANIFEST, write_json_atomic
from .options import ExportOptions
from .crossencoder import activation_of, check_pair_template
from .score import SCORE_GRAPH, SCORE_OUTPUT, ScoreHead, check_rerank_options
from .score_validate import score_thresholds, validate_scores
from .record import common_fields
from .source import ModelSource, position_limit
from .staging import staged_folder


def export_scorer(options: ExportOptions, src: ModelSource, out_dir: Path, started: float, log) -> dict:
    """Export, fuse, lower, validate; return the manifest. Raises ParityError after writing an invalid manifest."""
    check_rerank_options(options)
    check_pair_template(src.path)
    model, _missing, tokenizer = load_checked(src, options.trust_remote_code, options.allow_large_config, task="rerank")
    cfg = model.config
    num_labels = int(cfg.num_labels)
    activation, activation_from = activation_of(src.path, num_labels)
    max_length = _max_length(options, src, cfg, tokenizer)
    input_names = [n for n in tokenizer.model_input_names if n in inspect.signature(model.forward).parameters]
    if "input_ids" not in input_names or "attention_mask" not in input_names:
        input_names = ["input_ids", "attention_mask"] + [n for n in input_names if n not in ("input_ids", "attention_mask")]
    large = sum(p.numel() * p.element_size() for p in model.parameters()) > TWO_GB * 0.9
    head = ScoreHead(model, input_names)
    with staged_folder(out_dir, [src.path]) as work:
        scratch = {name: work / ".scratch" / name for name in ("raw", "fused")}
        for folder in scratch.values():
            folder.mkdir(parents=True)
        log(f"exporting score graph ({num_labels} label{'s' if num_labels > 1 else ''}, {activation}, {options.precision})")
        export_graph(head, input_names, [SCORE_OUTPUT], scratch["raw"] / SCORE_GRAPH, options.opset, large)
        fused = fuse_graph(scratch["raw"] / SCORE_GRAPH, scratch["fused"] / SCORE_GRAPH, cfg.num_attention_heads,
                           cfg.hidden_size, large)
        quantization = lower(scratch["fused"] / SCORE_GRAPH, work / SCORE_GRAPH, options.precision, large)
        shutil.rmtree(work / ".scratch")
        tokenizer.save_pretrained(str(work))
        log("validating against PyTorch fp32 on real text pairs")
        thresholds = score_thresholds(options.precision, options.atol, options.min_overlap)
        parity = {"score": validate_scores(head, work / SCORE_GRAPH, tokenizer, input_names, max_length, thresholds,
                                           openvino="bf16" if options.precision == "bf16" else None)}
        notes = [] if activation_from.startswith(("config", "default")) else [f"activation: {activation_from}"]
        if not attention_fused(fused, cfg.num_hidden_layers):
            notes.append(f"attention did not fuse for {src.model_type}: {fused.get('Attention', 0)} fused Attention ops for "
                         f"{cfg.num_hidden_layers} layers; the graph runs unfused attention (correct, slower)")
        valid = parity["score"]["pass"]
        manifest = common_fields(options, src, cfg, tokenizer, max_length, input_names, fused, notes, parity, valid, work) | {
            "task": "rerank", "input": "pair", "graph": SCORE_GRAPH, "outputs": {SCORE_GRAPH: [SCORE_OUTPUT]},
            "head_outputs": {"score": SCORE_OUTPUT}, "num_labels": num_labels, "activation": activation,
            "activation_from": activation_from, "embedding_dim": num_labels, "pooling": None, "normalize": False,
            "truncation": "longest_first", "architectures": list(cfg.architectures or []),
        }
        if quantization:
            manifest["quantization"] = quantization
        manifest["export_seconds"] = round(time.time() - started, 2)
        write_json_atomic(work / MANIFEST, manifest)
    for note in notes:
        log(f"note: {note}")
    if not valid:
        raise ParityError(f"export to {out_dir} failed parity; manifest marked invalid:\n  "
                          + "\n  ".join(parity["score"]["outputs"]["scores"]["failures"]), parity)
    return manifest


def _max_length(options: ExportOptions, src: ModelSource, cfg, tokenizer) -> int:
    """--max-length, else the CrossEncoder's (its tokenizer's model_max_length), capped by the model's positions."""
    limit = position_limit(src, cfg, tokenizer)
    max_length = next(v for v in (options.max_length, src.st.max_length, limit) if v is not None)
    if not 2 <= max_length <= limit:
        raise OptionError(f"--max-length {max_length} is out of range for this model; it accepts 2..{limit} tokens")
    return max_length
