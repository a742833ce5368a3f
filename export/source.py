"""Find a model (local folder or hub id), read its sentence-transformers metadata, and load it for export."""
from __future__ import annotations

import errno
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

from .errors import ModelSourceError, UnsupportedArchitectureError

SUPPORTED_ARCHITECTURES = ("bert", "roberta", "xlm-roberta", "distilbert", "mpnet", "electra", "qwen3", "modernbert",
                           "gemma3_text", "gte", "nomic_bert")
# Architectures whose position ids start after the padding index, so max positions shrink by pad_id + 1.
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "mpnet")
# Architectures whose trained checkpoints carry a pooler (dense + tanh over [CLS]).
POOLER_ARCHITECTURES = ("bert", "roberta", "xlm-roberta", "mpnet")
# sentence-transformers' legacy pooling_mode_* flags -> our mode names, in its concatenation order.
_ST_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean-sqrt-len",
    "pooling_mode_weightedmean_tokens": "weighted-mean",
    "pooling_mode_lasttoken": "lasttoken",
}
# sentence-transformers >= 5 writes one 'pooling_mode' name (or a list of them) instead of the flags above.
_ST_MODE_NAMES = {"cls": "cls", "mean": "mean", "max": "max", "weightedmean": "weighted-mean",
                  "mean_sqrt_len_tokens": "mean-sqrt-len", "lasttoken": "lasttoken"}


@dataclass(frozen=True)
class STMetadata:
    """What a sentence-transformers layout says about pooling, normalization, length and prompts."""

    pooling: str | None = None  # one mode, or several joined by '+' (concatenated in that order)
    dense: tuple = ()  # (folder, config dict) per Dense module, in order after pooling
    normalize: bool | None = None
    max_length: int | None = None
    prompts: dict = field(default_factory=dict)
    default_prompt_name: str | None = None


@dataclass(frozen=True)
class ModelSource:
    """A resolved model folder plus where it came from."""

    path: Path
    source: str  # what the user passed
    revision: str | None  # hub commit, when downloaded
    content_hash: str  # sha256 over every file in the folder
    model_type: str
    st: STMetadata


def resolve_source(model: str | Path, revision: str | None = None) -> ModelSource:
    """Turn a folder path or hub id into a local folder with its metadata."""
    path, hub_revision = local_folder(model, revision)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelSourceError(f"{path} has no config.json; pass a Hugging Face model folder (config.json, weights, tokenizer files)")
    config = read_json(config_file, dict)
    model_type = config.get("model_type", "")
    if model_type not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedArchitectureError(
            f"{path}: architecture {model_type!r} is not supported; supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    return ModelSource(
        path=path.resolve(), source=str(model), revision=hub_revision,
        content_hash=hash_folder(path), model_type=model_type, st=read_st_metadata(path),
    )


def local_folder(model: str | Path, revision: str | None = None) -> tuple[Path, str | None]:
    """(the model's local folder, the hub commit when it was downloaded): a folder path, or a hub id fetched."""
    path = Path(model).expanduser()
    hub_revision = None
    _check_links(path)
    if not path.exists():
        model = str(model)
        if model.startswith((".", "/", "~")) or model.count("/") > 1:
            raise ModelSourceError(f"model folder {model!r} does not exist; pass an existing folder or a hub id like 'org/name'")
        path, hub_revision = _download(model, revision)
    if not path.is_dir():
        raise ModelSourceError(f"model path {str(path)!r} is a file; pass the folder that holds config.json")
    return path, hub_revision


def _check_links(path: Path) -> None:
    """Name a symbolic link loop, or a link to nothing, as one (path.exists() is False for both, which would send them
    to the hub as ids)."""
    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ModelSourceError(f"model folder {str(path)!r} is a symbolic link loop (a link that leads back to itself); "
                                   "point it at the real model folder, or pass that folder") from err
        if path.is_symlink():
            raise ModelSourceError(f"model folder {str(path)!r} is a symbolic link to {os.readlink(path)!r}, which does not "
                                   "exist; point it at the real model folder, or pass that folder") from err


def error_text(err: BaseException) -> str:
    """An error's message, or its type where the message is empty (a MemoryError has none): never an empty text."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text}" if text else f"{type(err).__name__} (no message)"


def _download(repo_id: str, revision: str | None) -> tuple[Path, str | None]:
    """Fetch a hub snapshot; only reached when the argument is not a local folder."""
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(repo_id, revision=revision)
    except Exception as err:  # the hub client raises many types; all mean "could not fetch"
        raise ModelSourceError(
            f"{repo_id!r} is not a local folder and could not be fetched from the Hugging Face hub ({error_text(err)}); "
            "pass a local model folder, or check the id and the network"
        ) from err
    return Path(local), Path(local).name


def hash_folder(path: Path) -> str:
    """sha256 over the relative names and bytes of every non-hidden file, in sorted order."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)):
        digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def read_st_metadata(path: Path) -> STMetadata:
    """Read modules.json, the Pooling config and sentence_bert_config.json when the folder has them."""
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        return STMetadata()
    modules = read_json(modules_file, list)
    pooling = None
    normalize = False
    max_length = None
    dense = []
    order = []  # module kinds after Transformer, to check they come as Pooling, Dense..., Normalize
    for i, module in enumerate(modules):
        if not isinstance(module, dict) or not isinstance(module.get("type", ""), str) \
                or not isinstance(module.get("path", ""), str):
            raise ModelSourceError(f"{modules_file}: entry {i} is not an object with string 'type' and 'path' fields; "
                                   "fix the file or delete it and pass --pooling")
        kind = module.get("type", "").rsplit(".", 1)[-1]
        rel = module.get("path", "")
        if PureWindowsPath(rel).anchor or ".." in PureWindowsPath(rel).parts or "\0" in rel:  # POSIX and Windows forms
            raise ModelSourceError(f"{modules_file}: the {kind or 'unnamed'} module's path {rel!r} leads outside the model "
                                   "folder (sentence-transformers refuses it too); module paths are folders inside it, "
                                   "like '1_Pooling': fix modules.json")
        mpath = path / rel
        if kind == "Transformer":
            cfg = mpath / "sentence_bert_config.json"
            if cfg.is_file():
                max_length = read_json(cfg, dict).get("max_seq_length")
                if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2):
                    raise ModelSourceError(f"{cfg}: max_seq_length {max_length!r} is not an integer of at least 2; "
                                           "fix the file or pass --max-length")
            continue
        order.append(kind)
        if kind == "Pooling":
            if not (mpath / "config.json").is_file():
                raise ModelSourceError(f"{modules_file} lists a Pooling module at {rel!r}, but {mpath / 'config.json'} "
                                       "is missing (sentence-transformers refuses the folder too); restore that file, "
                                       "or remove the Pooling entry from modules.json and pass --pooling")
            pooling = _read_pooling(mpath / "config.json")
        elif kind == "Dense":
            dense.append((mpath, read_json(mpath / "config.json", dict)))
        elif kind == "Normalize":
            normalize = True
        else:
            raise UnsupportedArchitectureError(
                f"{modules_file}: sentence-transformers module {kind!r} is not supported (only Transformer, Pooling, "
                "Dense, Normalize); export the bare encoder by removing it from modules.json and pass --pooling"
            )
    if dense and order != ["Pooling"] + ["Dense"] * len(dense) + ["Normalize"] * normalize:
        raise UnsupportedArchitectureError(f"{modules_file}: modules come as {' -> '.join(order)}; the exporter traces "
                                           "Pooling -> Dense... -> Normalize; fix modules.json or remove the Dense modules")
    prompts, default_prompt = {}, None
    st_cfg = path / "config_sentence_transformers.json"
    if st_cfg.is_file():
        data = read_json(st_cfg, dict)
        prompts = data.get("prompts") or {}
        default_prompt = data.get("default_prompt_name")
        if not isinstance(prompts, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()):
            raise ModelSourceError(f"{st_cfg}: 'prompts' must map names to prompt strings; fix or delete the file")
        if default_prompt is not None and default_prompt not in prompts:
            raise ModelSourceError(f"{st_cfg}: default_prompt_name {default_prompt!r} is not one of its prompts "
                                   f"({', '.join(prompts) or 'none'}); fix or delete the file")
    return STMetadata(pooling=pooling, dense=tuple(dense), normalize=normalize, max_length=max_length, prompts=prompts, default_prompt_name=default_prompt)


def _read_pooling(config_file: Path) -> str:
    """Map the sentence-transformers pooling config (legacy pooling_mode_* flags or, since v5, 'pooling_mode') to our
    mode; several modes become one name joined by '+', in sentence-transformers' concatenation order."""
    cfg = read_json(config_file, dict)
    if "pooling_mode" in cfg:
        mode = cfg["pooling_mode"]
        modes = [mode] if isinstance(mode, str) else mode or []
        if not isinstance(modes, list) or not all(isinstance(m, str) for m in modes):
            raise ModelSourceError(f"{config_file}: pooling_mode {mode!r} is not a name or a list of names; pass --pooling")
        unknown = [m for m in modes if m not in _ST_MODE_NAMES]
        if unknown:
            raise UnsupportedArchitectureError(f"{config_file}: pooling mode {unknown} is not supported "
                                               f"(supported: {', '.join(_ST_MODE_NAMES)}); pass --pooling explicitly")
        chosen = [_ST_MODE_NAMES[m] for m in modes]
    else:
        chosen = [mode for flag, mode in _ST_POOLING_FLAGS.items() if cfg.get(flag)]
    if not chosen:
        raise UnsupportedArchitectureError(f"{config_file}: no pooling mode is switched on; pass --pooling explicitly")
    if cfg.get("include_prompt", True) is False:
        raise UnsupportedArchitectureError(f"{config_file}: include_prompt false (prompt tokens left out of pooling) is not "
                                           "supported; pass --pooling to pool over every token, prompt included")
    return "+".join(chosen)


def read_json(path: Path, kind: type):
    """A JSON file of the model folder that must hold an object (dict) or an array (list); ModelSourceError otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelSourceError(f"cannot read {path}: {err}; the file must be valid JSON (fix it or restore the model folder)") from err
    if not isinstance(data, kind):
        want = "an object" if kind is dict else "an array"
        raise ModelSourceError(f"{path} holds a JSON {type(data).__name__}, not {want}; fix it or restore the model folder")
    return data


def load_model(src: ModelSource, trust_remote_code: bool = False, task: str = "embed"):
    """Load the encoder (task "embed"), or the encoder with its sequence-classification head (task "rerank") or its
    masked-language-model head (task "sparse"), in fp32
    eval mode with eager attention, so attentions can be returned.

    Returns (model, missing): missing names the checkpoint weights transformers had to initialise at random. Missing
    encoder weights are refused here; a missing pooler only matters for pooling 'pooler' (checked by the caller); a
    cross-encoder's head (its pooler and classifier included) and a SPLADE model's MLM head must be complete.
    """
    from transformers import AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification

    auto = {"rerank": AutoModelForSequenceClassification, "sparse": AutoModelForMaskedLM}.get(task, AutoModel)
    try:
        model, info = auto.from_pretrained(
            src.path, attn_implementation="eager", trust_remote_code=trust_remote_code, dtype="float32",
            output_loading_info=True,
        )
    except MemoryError as err:
        raise ModelSourceError(f"ran out of memory building the model in {src.path}; check the sizes in its config.json "
                               "(layers, hidden_size, vocab_size), or export on a machine with more memory") from err
    except Exception as err:
        raise ModelSourceError(f"cannot load the model in {src.path}: {error_text(err)}") from err
    missing = sorted(info.get("missing_keys") or ())
    encoder_missing = [k for k in missing if task != "embed" or not k.startswith("pooler.")]
    if encoder_missing:
        shown = ", ".join(encoder_missing[:5]) + (f" and {len(encoder_missing) - 5} more" if len(encoder_missing) > 5 else "")
        raise ModelSourceError(
            f"{src.path}: the checkpoint lacks {len(encoder_missing)} encoder weights ({shown}); they would be random. "
            "Pass a folder whose weights match its config.json"
        )
    return model.eval(), missing


def load_tokenizer(src: ModelSource, trust_remote_code: bool = False):
    """Load the fast tokenizer; the engine needs tokenizer.json, so slow-only tokenizers are refused."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(src.path, trust_remote_code=trust_remote_code)
    except Exception as err:
        raise ModelSourceError(f"cannot load the tokenizer in {src.path}: {error_text(err)}; the folder needs tokenizer files") from err
    if not getattr(tok, "is_fast", False):
        raise ModelSourceError(f"{src.path}: tokenizer is not a fast (Rust) tokenizer; add tokenizer.json to the folder")
    return tok


def position_limit(src: ModelSource, cfg, tokenizer) -> int:
    """The longest input the model takes: its positions (less the padding offset of RoBERTa-style position ids),
    capped by the tokenizer's model_max_length when that is set."""
    limit = cfg.max_position_embeddings - (cfg.pad_token_id + 1 if src.model_type in _OFFSET_POSITIONS else 0)
    if 0 < getattr(tokenizer, "model_max_length", 0) < 100_000:
        limit = min(limit, tokenizer.model_max_length)
    return limit
