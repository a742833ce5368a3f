"""export_sparse: a SPLADE model (a sentence-transformers SparseEncoder folder, or a *ForMaskedLM folder given
--pooling splade) -> sparse.onnx + tokenizer (+ query_weights.npy for an inference-free query side) + manifest.json
(task "sparse", input "text"), validated on real texts against the PyTorch head (export/sparse_validate.py)."""
from __future__ import annotations

import inspect
import shutil
import time
from pathlib import Path

import numpy as np

from .errors import ModelSourceError, OptionError, ParityError, UnsupportedArchitectureError
from .fusion import attention_fused, fuse_graph
from .graphs import TWO_GB, export_graph
from .loading import load_checked
from .lower import lower
from .manifest import MANIFEST, write_json_atomic
from .options import ExportOptions
from .record import common_fields
from .source import SUPPORTED_ARCHITECTURES, ModelSource, STMetadata, hash_folder, position_limit, read_json, read_st_metadata
from .sparse_folder import SparseLayout, architectures, is_masked_lm
from .sparse_validate import sparse_thresholds, validate_sparse
from .splade import SPARSE_GRAPH, SPARSE_OUTPUT, SpladeHead, check_sparse_options
from .staging import staged_folder

QUERY_WEIGHTS = "query_weights.npy"  # (V,) float32: an inference-free query side's per-token weights


def export_sparse(options: ExportOptions, folder: Path, hub_revision: str | None, layout: SparseLayout | None,
                  out_dir: Path, started: float, log) -> dict:
    """Export, fuse, lower, validate; return the manifest. Raises ParityError after writing an invalid manifest.
    layout None: a bare folder given --pooling splade (max pooling, relu activation: TEI's splade)."""
    check_sparse_options(options)
    if layout is None:
        if not is_masked_lm(folder):
            raise OptionError(f"--pooling splade needs a masked-language-model head (a *ForMaskedLM architecture); "
                              f"{folder}/config.json names {architectures(folder) or 'no architectures'}. Pass a SPLADE "
                              "model (a SparseEncoder folder or a *ForMaskedLM checkpoint), or another --pooling")
        st = read_st_metadata(folder)
        layout = SparseLayout(root=folder, mlm_dir=folder, max_seq_length=st.max_length, prompts=dict(st.prompts),
                              default_prompt_name=st.default_prompt_name, from_layout=False)
    src = _source(options, layout, hub_revision)
    model, _missing, tokenizer = load_checked(src, options.trust_remote_code, options.allow_large_config, task="sparse")
    cfg = model.config
    max_length = _max_length(options, src, cfg, tokenizer)
    input_names = [n for n in tokenizer.model_input_names if n in inspect.signature(model.forward).parameters]
    if "input_ids" not in input_names or "attention_mask" not in input_names:
        input_names = ["input_ids", "attention_mask"] + [n for n in input_names if n not in ("input_ids", "attention_mask")]
    vocab = int(model.get_output_embeddings().out_features)
    query = _query_side(layout, tokenizer, vocab)
    large = sum(p.numel() * p.element_size() for p in model.parameters()) > TWO_GB * 0.9
    head = SpladeHead(model, input_names, layout.pooling, layout.activation)
    with staged_folder(out_dir, [folder]) as work:
        scratch = {name: work / ".scratch" / name for name in ("raw", "fused")}
        for path in scratch.values():
            path.mkdir(parents=True)
        log(f"exporting sparse graph (SPLADE {layout.pooling}, {layout.activation}, vocabulary {vocab:,}, {options.precision})")
        export_graph(head, input_names, [SPARSE_OUTPUT], scratch["raw"] / SPARSE_GRAPH, options.opset, large)
        fused = fuse_graph(scratch["raw"] / SPARSE_GRAPH, scratch["fused"] / SPARSE_GRAPH, cfg.num_attention_heads,
                           cfg.hidden_size, large)
        quantization = lower(scratch["fused"] / SPARSE_GRAPH, work / SPARSE_GRAPH, options.precision, large)
        shutil.rmtree(work / ".scratch")
        tokenizer.save_pretrained(str(work))
        if "array" in query:
            np.save(work / QUERY_WEIGHTS, query.pop("array"))
        log("validating against PyTorch fp32 on real texts")
        thresholds = sparse_thresholds(options.precision, options.atol, options.min_cos, options.min_overlap)
        parity = {"sparse": validate_sparse(head, work / SPARSE_GRAPH, tokenizer, input_names, max_length, thresholds,
                                            openvino="bf16" if options.precision == "bf16" else None)}
        notes = []
        if not attention_fused(fused, cfg.num_hidden_layers):
            notes.append(f"attention did not fuse for {src.model_type}: {fused.get('Attention', 0)} fused Attention ops for "
                         f"{cfg.num_hidden_layers} layers; the graph runs unfused attention (correct, slower)")
        valid = parity["sparse"]["pass"]
        manifest = common_fields(options, src, cfg, tokenizer, max_length, input_names, fused, notes, parity, valid, work) | {
            "task": "sparse", "input": "text", "graph": SPARSE_GRAPH, "outputs": {SPARSE_GRAPH: [SPARSE_OUTPUT]},
            "head_outputs": {"sparse": SPARSE_OUTPUT}, "vocab_size": vocab, "embedding_dim": vocab,
            "pooling": "splade", "normalize": False, "splade": {"pooling": layout.pooling, "activation": layout.activation},
            "query": query, "max_active_dims": layout.max_active_dims, "similarity_fn_name": "dot",
            "sparse_from": "sentence-transformers" if layout.from_layout else "--pooling splade",
            "architectures": list(cfg.architectures or []),
        }
        if quantization:
            manifest["quantization"] = quantization
        manifest["export_seconds"] = round(time.time() - started, 2)
        write_json_atomic(work / MANIFEST, manifest)
    for note in notes:
        log(f"note: {note}")
    if not valid:
        raise ParityError(f"export to {out_dir} failed parity; manifest marked invalid:\n  "
                          + "\n  ".join(parity["sparse"]["outputs"][SPARSE_OUTPUT]["failures"]), parity)
    return manifest


def _source(options: ExportOptions, layout: SparseLayout, hub_revision: str | None) -> ModelSource:
    """The MLM's folder as a ModelSource; the content hash covers the whole folder passed (query weights included)."""
    config_file = layout.mlm_dir / "config.json"
    if not config_file.is_file():
        raise ModelSourceError(f"{layout.mlm_dir} has no config.json; the SPLADE model's MLM folder needs config.json, "
                               "weights and tokenizer files")
    model_type = read_json(config_file, dict).get("model_type", "")
    if model_type not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedArchitectureError(f"{layout.mlm_dir}: architecture {model_type!r} is not supported; supported: "
                                           f"{', '.join(SUPPORTED_ARCHITECTURES)}")
    st = STMetadata(max_length=layout.max_seq_length, prompts=dict(layout.prompts),
                    default_prompt_name=layout.default_prompt_name)
    return ModelSource(path=layout.mlm_dir.resolve(), source=str(options.model), revision=hub_revision,
                       content_hash=hash_folder(layout.root), model_type=model_type, st=st)


def _query_side(layout: SparseLayout, tokenizer, vocab: int) -> dict:
    """The manifest's "query" entry: {"kind": "document"} (queries run the graph), or for a SparseStaticEmbedding
    {"kind": "static", "weights": QUERY_WEIGHTS, "special_tokens": False, "max_length": ...} plus the array to save:
    sentence-transformers tokenizes queries without special tokens, truncated at the query tokenizer's
    model_max_length, and gives each distinct token its weight (weights[token id] where the text has that token)."""
    if layout.query != "static":
        return {"kind": "document"}
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer

    weights_file = layout.query_dir / "model.safetensors"
    if not weights_file.is_file():
        raise ModelSourceError(f"{layout.query_dir}: the SparseStaticEmbedding has no model.safetensors (an idf.json "
                               "query side is not supported); save the model with sentence-transformers >= 5")
    tensors = load_file(str(weights_file))
    if set(tensors) != {"weight"} or tensors["weight"].ndim != 1:
        raise ModelSourceError(f"{weights_file}: expected one 1-D tensor 'weight', found {sorted(tensors)}; fix the file")
    weights = tensors["weight"].astype(np.float32)  # (V,) float32
    if len(weights) != vocab or not np.isfinite(weights).all():
        raise ModelSourceError(f"{weights_file}: {len(weights)} query weights for a vocabulary of {vocab} (or non-finite "
                               "values); they must match the MLM's vocabulary one to one")
    query_tok = AutoTokenizer.from_pretrained(layout.query_dir)
    if query_tok.get_vocab() != tokenizer.get_vocab():
        raise UnsupportedArchitectureError(f"{layout.query_dir}: the query side's tokenizer differs from the document "
                                           f"side's ({layout.mlm_dir}); the exporter ships one tokenizer")
    limit = getattr(query_tok, "model_max_length", 0)
    return {"kind": "static", "weights": QUERY_WEIGHTS, "special_tokens": False, "pooling": "token-weight",
            "max_length": int(limit) if 0 < limit < 100_000 else None, "array": weights}


def _max_length(options: ExportOptions, src: ModelSource, cfg, tokenizer) -> int:
    """--max-length, else the module's max_seq_length, else the model's positions (and its tokenizer's limit)."""
    limit = position_limit(src, cfg, tokenizer)
    max_length = next(v for v in (options.max_length, src.st.max_length, limit) if v is not None)
    if not 2 <= max_length <= limit:
        raise OptionError(f"--max-length {max_length} is out of range for this model; it accepts 2..{limit} tokens")
    return max_length
