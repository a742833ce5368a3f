"""export_model: Hugging Face encoder -> embed.onnx + inspect.onnx + tokenizer + manifest.json, validated."""
from __future__ import annotations

import inspect
import shutil
import time
from pathlib import Path

from .errors import ModelSourceError, OptionError, OutputExistsError, ParityError
from .fusion import attention_fused, fuse_graph
from .graphs import EMBED_OUTPUTS, INSPECT_OUTPUTS, TWO_GB, export_graph, place_graph
from .heads import EmbedHead, InspectHead, pooled_width
from .manifest import HEAD_OUTPUTS, MANIFEST, write_json_atomic
from .record import common_fields
from .crossencoder import is_cross_encoder
from .score_export import export_scorer
from .sparse_export import export_sparse
from .sparse_folder import SPLADE, sparse_layout
from .options import ExportOptions, ResolvedOptions
from .paths import check_output_path
from .staging import is_export_output, staged_folder
from .lower import lower
from .loading import load_checked
from .source import POOLER_ARCHITECTURES, ModelSource, local_folder, position_limit, resolve_source
from .dense import load_dense
from .cpu import bf16_refusal
from .devices import gpu_visible
from .validate import thresholds_for, validate_graph
from .textgate import split_thresholds, validate_texts
from .weights import check_finite_weights

def export_model(options: ExportOptions, log=print) -> dict:
    """Export, fuse, lower, validate; return the manifest. Raises ParityError after writing an invalid manifest.

    PyTorch runs single-threaded for the duration (restored afterwards), as do the validation sessions: the reference
    passes are one text at a time, parity numbers then do not depend on the machine's core count, and on a shared
    machine OpenMP's spinning threads made a MiniLM export 2-3x slower.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _export(options, log)
    except MemoryError as err:  # it has no message of its own
        raise ModelSourceError(f"ran out of memory exporting {options.model}; check the sizes in its config.json, or "
                               "export on a machine with more memory") from err
    finally:
        torch.set_num_threads(threads)


def _export(options: ExportOptions, log) -> dict:
    """export_model's body."""
    started = time.time()
    out_dir = Path(options.out_dir).expanduser()
    local = Path(options.model).expanduser()
    _check_out_dir(out_dir, options.overwrite, [local] if local.exists() else [])  # before any slow step
    if options.precision == "bf16":
        _check_bf16_here()
    folder, hub_revision = local_folder(options.model, options.revision)
    layout = sparse_layout(folder)  # JSON only; before read_st_metadata, which refuses SparseEncoder modules
    if layout is not None or options.pooling == SPLADE:
        _check_out_dir(out_dir, options.overwrite, [folder])
        return export_sparse(options, folder, hub_revision, layout, out_dir, started, log)
    src = resolve_source(options.model, options.revision)
    _check_out_dir(out_dir, options.overwrite, [src.path])
    if is_cross_encoder(src.path):
        return export_scorer(options, src, out_dir, started, log)
    model, missing, tokenizer = load_checked(src, options.trust_remote_code, options.allow_large_config)
    cfg = model.config
    resolved = resolve_options(options, src, cfg, tokenizer)
    if resolved.pooling == "pooler" and (getattr(model, "pooler", None) is None or any(k.startswith("pooler.") for k in missing)):
        raise OptionError(f"pooling 'pooler' needs trained pooler weights (pooler.dense.*), which {src.path} lacks; "
                          "transformers would initialise them at random. Choose cls or mean")
    input_names = [n for n in tokenizer.model_input_names if n in inspect.signature(model.forward).parameters]
    if "input_ids" not in input_names or "attention_mask" not in input_names:
        input_names = ["input_ids", "attention_mask"] + [n for n in input_names if n not in ("input_ids", "attention_mask")]
    large = sum(p.numel() * p.element_size() for p in model.parameters()) > TWO_GB * 0.9

    # Build everything in a sibling partial folder, renamed into place at the end (export/staging.py).
    with staged_folder(out_dir, [src.path]) as work:
        embed_outputs = list(EMBED_OUTPUTS[: 2 if resolved.token_embeddings else 1])
        embed_head = EmbedHead(model, input_names, resolved.pooling, resolved.normalize, resolved.last_k, resolved.token_embeddings,
                               dense=_dense_layers(src, resolved.pooling, cfg.hidden_size, resolved.last_k))
        # Intermediates (traced, fused graphs and any weight files their writers put beside them) live in scratch/.
        scratch = {name: work / ".scratch" / name for name in ("raw", "fused", "inspect")}
        for folder in scratch.values():
            folder.mkdir(parents=True)
        log(f"exporting embed graph ({resolved.pooling}, normalize={resolved.normalize}, {resolved.precision})")
        export_graph(embed_head, input_names, embed_outputs, scratch["raw"] / "embed.onnx", options.opset, large)
        fused_path = scratch["fused"] / "embed.onnx"
        fused = fuse_graph(scratch["raw"] / "embed.onnx", fused_path, cfg.num_attention_heads, cfg.hidden_size, large)
        quantization = lower(fused_path, work / "embed.onnx", resolved.precision, large)
        log("exporting inspect graph (hidden states, attentions)")
        inspect_head = InspectHead(model, input_names)
        export_graph(inspect_head, input_names, list(INSPECT_OUTPUTS), scratch["inspect"] / "inspect.onnx", options.opset, large)
        place_graph(scratch["inspect"] / "inspect.onnx", work / "inspect.onnx", large)
        shutil.rmtree(work / ".scratch")
        tokenizer.save_pretrained(str(work))

        log("validating against PyTorch fp32")
        on_gpu = resolved.precision == "fp16" and gpu_visible()
        on_ov = "bf16" if resolved.precision == "bf16" else None
        embed_th, texts_th = split_thresholds(thresholds_for(resolved.precision, options.atol, options.min_cos, options.min_overlap))
        parity = {
            "embed": validate_graph(embed_head, work / "embed.onnx", tokenizer, input_names, embed_outputs,
                                    resolved.max_length, embed_th, cuda=on_gpu, openvino=on_ov),
            "inspect": validate_graph(inspect_head, work / "inspect.onnx", tokenizer, input_names, list(INSPECT_OUTPUTS),
                                      resolved.max_length, thresholds_for("fp32", options.atol, options.min_cos)),
        }
        if texts_th is not None:  # lossy precisions: cosines and neighbour overlap on the shipped real texts too
            log("validating on the parity texts (real text, mixed lengths)")
            parity["embed_texts"] = validate_texts(embed_head, work / "embed.onnx", tokenizer, input_names, embed_outputs,
                                                   resolved.max_length, texts_th, openvino=on_ov)
        notes = []
        if not attention_fused(fused, cfg.num_hidden_layers):
            notes.append(f"attention did not fuse for {src.model_type}: {fused.get('Attention', 0)} fused Attention ops for "
                         f"{cfg.num_hidden_layers} layers; the graph runs unfused attention (correct, slower)")
        if resolved.precision == "fp16" and parity["embed"]["provider"] != "CUDAExecutionProvider":
            notes.append("fp16 embed graph validated on CPU (no usable CUDA GPU here); onnxruntime's CPU provider runs "
                         "some fp16 ops in fp32, so re-export on a CUDA machine to measure fp16 numerics as served")
        valid = all(report["pass"] for report in parity.values())
        manifest = _build_manifest(options, src, cfg, tokenizer, resolved, input_names, embed_outputs, fused, notes, parity, valid, work,
                                   embed_head.output_dim(cfg.hidden_size))
        if quantization:
            manifest["quantization"] = quantization
        manifest["export_seconds"] = round(time.time() - started, 2)
        write_json_atomic(work / MANIFEST, manifest)
    for note in notes:
        log(f"note: {note}")
    if not valid:
        failures = [f for rep in parity.values() for o in rep["outputs"].values() for f in o["failures"]]
        raise ParityError(f"export to {out_dir} failed parity; manifest marked invalid:\n  " + "\n  ".join(failures), parity)
    return manifest


def _check_out_dir(out_dir: Path, overwrite: bool, sources: list[Path]) -> None:
    """Refuse an unsafe OUT_DIR (see export.paths), one inside the model folder, a file, a symbolic link, or a
    non-empty folder unless overwrite was asked for and it holds an earlier export."""
    check_output_path(out_dir, reads=sources, what="OUT_DIR", error=OutputExistsError)
    for src in sources:
        src = src.resolve()
        if src in out_dir.resolve().parents:
            raise OutputExistsError(f"OUT_DIR {out_dir} lies inside the model folder {src}, which the export reads; "
                                    "choose a folder outside it")
    if out_dir.is_symlink():
        raise OutputExistsError(f"OUT_DIR {out_dir} is a symbolic link (to {out_dir.resolve()}); the export replaces "
                                "the folder as a whole, so pass the real folder path")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputExistsError(f"{out_dir} is a file; pass a folder path for the export")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{out_dir} is not empty; pass --overwrite to replace its contents")
        if not is_export_output(out_dir):
            raise OutputExistsError(f"{out_dir} is not empty and holds no {MANIFEST}, so it is not an earlier export; "
                                    "--overwrite only replaces export folders: choose another folder, or empty it yourself")


def resolve_options(options: ExportOptions, src: ModelSource, cfg, tokenizer) -> ResolvedOptions:
    """Fill pooling / normalize / max_length from sentence-transformers metadata, else from the architecture."""
    st = src.st
    pooling = options.pooling or st.pooling or "cls"  # options were validated by ExportOptions
    if pooling == "pooler" and src.model_type not in POOLER_ARCHITECTURES:
        raise OptionError(f"pooling 'pooler' needs a pooler layer, which {src.model_type} has not; choose cls or mean")
    if pooling.startswith("last-k") and options.last_k > cfg.num_hidden_layers + 1:
        raise OptionError(f"--last-k {options.last_k} is out of range; the model has {cfg.num_hidden_layers + 1} hidden states (1..{cfg.num_hidden_layers + 1})")
    limit = position_limit(src, cfg, tokenizer)
    max_length = next(v for v in (options.max_length, st.max_length, limit) if v is not None)
    if not 2 <= max_length <= limit:
        raise OptionError(f"--max-length {max_length} is out of range for this model; it accepts 2..{limit} tokens")
    normalize = options.normalize if options.normalize is not None else bool(st.normalize)
    return ResolvedOptions(pooling=pooling, normalize=normalize, max_length=max_length, last_k=options.last_k,
                           precision=options.precision,
                           token_embeddings=options.token_embeddings if options.token_embeddings is not None else not options.precision.startswith("int8"),
                           defaults_from="sentence-transformers" if st.pooling else "architecture")


def _check_bf16_here() -> None:
    """A bf16 export is validated on this machine with OpenVINO's bf16 hint: refuse it up front on a CPU without bf16
    units (never emulated) or without openvino."""
    import importlib.util

    refusal = bf16_refusal()
    if refusal:
        raise OptionError(refusal)
    if importlib.util.find_spec("openvino") is None:
        raise OptionError("precision bf16 is validated and run with OpenVINO, which is not installed; install it with "
                          "pip install 'embedding-engine[openvino]'")


def _dense_layers(src: ModelSource, pooling: str, hidden_size: int, last_k: int) -> list:
    """The model's sentence-transformers Dense modules, checked to chain from the pooled width."""
    width = pooled_width(pooling, hidden_size, last_k)
    layers = []
    for folder, config in src.st.dense:
        layer = load_dense(folder, config)
        check_finite_weights(layer.state_dict().items(), str(folder))
        if layer.in_features != width:
            raise OptionError(f"{folder}: the Dense module takes {layer.in_features} features, but pooling {pooling!r} gives "
                              f"{width}; use the model's own pooling (omit --pooling) or remove the Dense modules")
        layers.append(layer)
        width = layer.out_features
    return layers


def _build_manifest(options, src, cfg, tokenizer, resolved, input_names, embed_outputs, fused, notes, parity, valid, work,
                    dim: int) -> dict:
    """Everything a reader needs to trust and run the export: the common fields and the embedder's own."""
    return common_fields(options, src, cfg, tokenizer, resolved.max_length, input_names, fused, notes, parity, valid, work) | {
        "task": "embed",
        "embedding_dim": dim,
        "pooling": resolved.pooling,
        "dense": [{"path": folder.name, "in_features": c.get("in_features"), "out_features": c.get("out_features"),
                   "activation": c.get("activation_function")} for folder, c in src.st.dense],
        "last_k": resolved.last_k,
        "normalize": resolved.normalize,
        "defaults_from": resolved.defaults_from,
        "outputs": {"embed.onnx": embed_outputs, "inspect.onnx": list(INSPECT_OUTPUTS)},
        "input": "text",
        "head_outputs": {head: out for head, out in HEAD_OUTPUTS.items() if out in embed_outputs},
    }
