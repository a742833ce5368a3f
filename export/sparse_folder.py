"""How a model folder says it is a SPLADE sparse encoder: sentence-transformers' SparseEncoder layout (modules.json
with an MLM Transformer -> SpladePooling, or a Router whose document side is that and whose query side is the same
stack or a SparseStaticEmbedding). Reads JSON only (no torch): the runtime asks it before exporting a model folder on
first use, and the exporter before sentence-transformers' module list is read (export.source refuses these modules).

A plain *ForMaskedLM folder without that layout stays an embedding model (bert-base-uncased says BertForMaskedLM)
unless --pooling splade asks for SPLADE over it (max pooling of log(1 + relu(logits)), TEI's 'splade' pooling)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

from .errors import ModelSourceError, UnsupportedArchitectureError
from .options import SPLADE_POOLING as SPLADE  # the --pooling name asking for SPLADE over a *ForMaskedLM folder
from .source import hash_folder, local_folder, read_json, resolve_source

POOLINGS = ("max", "sum")  # SpladePooling's pooling_strategy
ACTIVATIONS = ("relu", "log1p_relu")  # SpladePooling's activation_function: log1p(relu(x)), log1p(log1p(relu(x)))


@dataclass(frozen=True)
class SparseLayout:
    """What a SparseEncoder folder says: where the MLM lives, how it pools, and how queries are encoded."""

    root: Path  # the folder passed
    mlm_dir: Path  # the masked-language model (config.json, weights, tokenizer)
    pooling: str = "max"
    activation: str = "relu"
    query: str = "document"  # "document": queries run the MLM too; "static": SparseStaticEmbedding weights
    query_dir: Path | None = None  # the SparseStaticEmbedding folder (weights, tokenizer) for query "static"
    max_active_dims: int | None = None
    max_seq_length: int | None = None
    prompts: dict = field(default_factory=dict)
    default_prompt_name: str | None = None
    from_layout: bool = True  # False: a bare *ForMaskedLM folder given --pooling splade


def is_masked_lm(path: Path) -> bool:
    """True when config.json names a *ForMaskedLM architecture (an MLM head whose weights the folder should hold)."""
    config = read_json(path / "config.json", dict) if (path / "config.json").is_file() else {}
    archs = config.get("architectures") or []
    return isinstance(archs, list) and any(isinstance(a, str) and a.endswith("ForMaskedLM") for a in archs)


def architectures(path: Path) -> list[str]:
    """config.json's architectures (for messages)."""
    config = read_json(path / "config.json", dict) if (path / "config.json").is_file() else {}
    archs = config.get("architectures") or []
    return [a for a in archs if isinstance(a, str)] if isinstance(archs, list) else []


def model_identity(model: str) -> tuple[str, str]:
    """(folder name, content hash) of a model argument, as the export cache keys it: a SparseEncoder folder (whose
    Router layout has no config.json at its root) is hashed as it is; any other is checked by resolve_source."""
    folder, _revision = local_folder(model)
    if is_sparse_encoder(folder):
        return folder.resolve().name, hash_folder(folder)
    src = resolve_source(model)
    return src.path.name, src.content_hash


def is_sparse_encoder(path: Path) -> bool:
    """True for a sentence-transformers SparseEncoder folder of the SPLADE kind (see sparse_layout)."""
    return sparse_layout(path) is not None


def sparse_layout(path: Path) -> SparseLayout | None:
    """The folder's SparseLayout, or None when it is not a SPLADE SparseEncoder folder. A SparseEncoder layout this
    exporter cannot trace (another module, a query side of another kind) raises UnsupportedArchitectureError."""
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        return None
    modules = read_json(modules_file, list)
    kinds = [_kind(m, i, modules_file) for i, m in enumerate(modules)]
    if kinds == ["Router"]:
        return _router_layout(path, _module_dir(path, modules[0], modules_file))
    if len(kinds) == 2 and kinds[1] == "SpladePooling":
        mlm = _module_dir(path, modules[0], modules_file)
        if not _is_mlm_module(kinds[0], mlm):
            raise UnsupportedArchitectureError(f"{modules_file}: SpladePooling follows a {kinds[0]} module that is not a "
                                               "fill-mask Transformer (MLMTransformer); SPLADE needs MLM logits")
        pooling, activation = _splade_config(_module_dir(path, modules[1], modules_file))
        return _with_config(SparseLayout(root=path, mlm_dir=mlm, pooling=pooling, activation=activation), path, mlm)
    if "SpladePooling" in kinds or _st_model_type(path) == "SparseEncoder":
        raise UnsupportedArchitectureError(f"{modules_file}: a SparseEncoder of modules {' -> '.join(kinds)}; the exporter "
                                           "traces MLMTransformer -> SpladePooling (SPLADE), alone or as a Router's "
                                           "document side (with a SparseStaticEmbedding or the same SPLADE query side)")
    return None


def _router_layout(path: Path, router_dir: Path) -> SparseLayout | None:
    """A Router of 'query' and 'document' routes (Router.for_query_document): document MLM -> SpladePooling; query the
    same modules, or one SparseStaticEmbedding (inference-free SPLADE)."""
    cfg_file = router_dir / "router_config.json"
    if not cfg_file.is_file():
        raise ModelSourceError(f"{router_dir} holds a Router module without router_config.json; restore the file")
    cfg = read_json(cfg_file, dict)
    types, structure = cfg.get("types") or {}, cfg.get("structure") or {}
    if not isinstance(types, dict) or not isinstance(structure, dict):
        raise ModelSourceError(f"{cfg_file}: 'types' and 'structure' must be objects; fix the file")
    if set(structure) != {"query", "document"}:
        if _st_model_type(path) != "SparseEncoder":
            return None
        raise UnsupportedArchitectureError(f"{cfg_file}: routes {sorted(structure)}; the exporter runs a Router of "
                                           "exactly 'query' and 'document' routes")
    side = {}
    for route, ids in structure.items():
        if not isinstance(ids, list) or not all(isinstance(i, str) and i in types for i in ids):
            raise ModelSourceError(f"{cfg_file}: route {route!r} must list module ids named in 'types'; fix the file")
        for i in ids:
            if PureWindowsPath(i).anchor or ".." in PureWindowsPath(i).parts or "\0" in i:
                raise ModelSourceError(f"{cfg_file}: module id {i!r} leads outside the model folder; fix the file")
        side[route] = [(str(types[i]).rsplit(".", 1)[-1], router_dir / i) for i in ids]
    doc = side["document"]
    if not (len(doc) == 2 and doc[1][0] == "SpladePooling" and _is_mlm_module(doc[0][0], doc[0][1])):
        if _st_model_type(path) != "SparseEncoder" and not any(k == "SpladePooling" for k, _ in doc):
            return None
        raise UnsupportedArchitectureError(f"{cfg_file}: the document route is {' -> '.join(k for k, _ in doc)}; the "
                                           "exporter traces MLMTransformer -> SpladePooling there")
    pooling, activation = _splade_config(doc[1][1])
    layout = SparseLayout(root=path, mlm_dir=doc[0][1], pooling=pooling, activation=activation)
    query = side["query"]
    if [k for k, _ in query] == ["SparseStaticEmbedding"]:
        layout = _replace(layout, query="static", query_dir=query[0][1])
    elif [d for _, d in query] != [d for _, d in doc]:
        raise UnsupportedArchitectureError(f"{cfg_file}: the query route is {' -> '.join(k for k, _ in query)}; the "
                                           "exporter runs a SparseStaticEmbedding there, or the document route's modules")
    return _with_config(layout, path, doc[0][1])


def _with_config(layout: SparseLayout, path: Path, mlm: Path) -> SparseLayout:
    """Add max_active_dims, prompts (config_sentence_transformers.json) and max_seq_length (the MLM's module config)."""
    st_file = path / "config_sentence_transformers.json"
    data = read_json(st_file, dict) if st_file.is_file() else {}
    dims = data.get("max_active_dims")
    if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or dims < 1):
        raise ModelSourceError(f"{st_file}: max_active_dims {dims!r} must be a positive integer or null; fix the file")
    prompts = data.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()):
        raise ModelSourceError(f"{st_file}: 'prompts' must map names to prompt strings; fix or delete the file")
    default = data.get("default_prompt_name")
    if default is not None and default not in prompts:
        raise ModelSourceError(f"{st_file}: default_prompt_name {default!r} is not one of its prompts; fix the file")
    module_cfg = mlm / "sentence_bert_config.json"
    max_len = read_json(module_cfg, dict).get("max_seq_length") if module_cfg.is_file() else None
    if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 2):
        raise ModelSourceError(f"{module_cfg}: max_seq_length {max_len!r} is not an integer of at least 2; fix the file "
                               "or pass --max-length")
    return _replace(layout, max_active_dims=dims, prompts=dict(prompts), default_prompt_name=default,
                    max_seq_length=max_len)


def _replace(layout: SparseLayout, **changes) -> SparseLayout:
    import dataclasses

    return dataclasses.replace(layout, **changes)


def _kind(module, index: int, modules_file: Path) -> str:
    if not isinstance(module, dict) or not isinstance(module.get("type", ""), str) or not isinstance(module.get("path", ""), str):
        raise ModelSourceError(f"{modules_file}: entry {index} is not an object with string 'type' and 'path' fields; "
                               "fix the file")
    return module.get("type", "").rsplit(".", 1)[-1]


def _module_dir(path: Path, module: dict, modules_file: Path) -> Path:
    rel = module.get("path", "")
    if PureWindowsPath(rel).anchor or ".." in PureWindowsPath(rel).parts or "\0" in rel:
        raise ModelSourceError(f"{modules_file}: module path {rel!r} leads outside the model folder; fix modules.json")
    return path / rel


def _is_mlm_module(kind: str, folder: Path) -> bool:
    """MLMTransformer, or a Transformer saved with transformer_task 'fill-mask' (sentence-transformers >= 5.4)."""
    if kind == "MLMTransformer":
        return True
    cfg = folder / "sentence_bert_config.json"
    return kind == "Transformer" and cfg.is_file() and read_json(cfg, dict).get("transformer_task") == "fill-mask"


def _splade_config(folder: Path) -> tuple[str, str]:
    """(pooling_strategy, activation_function) of a SpladePooling module folder (its defaults: max, relu)."""
    cfg_file = folder / "config.json"
    cfg = read_json(cfg_file, dict) if cfg_file.is_file() else {}
    pooling, activation = cfg.get("pooling_strategy", "max"), cfg.get("activation_function", "relu")
    if pooling not in POOLINGS or activation not in ACTIVATIONS:
        raise UnsupportedArchitectureError(f"{cfg_file}: SpladePooling pooling_strategy {pooling!r} / activation_function "
                                           f"{activation!r}; supported: {', '.join(POOLINGS)} / {', '.join(ACTIVATIONS)}")
    return pooling, activation


def _st_model_type(path: Path) -> str | None:
    st = path / "config_sentence_transformers.json"
    return read_json(st, dict).get("model_type") if st.is_file() else None
