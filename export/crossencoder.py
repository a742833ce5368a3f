"""How a model folder says it is a cross-encoder (a reranker), and the activation sentence-transformers' CrossEncoder
applies to its logits. Reads JSON only (no torch): the runtime asks it before exporting a model folder on first use."""
from __future__ import annotations

from pathlib import Path

from .errors import OptionError
from .source import read_json

# sentence-transformers' saved activation_fn (a torch class path) -> the runtime's name for it
ACTIVATIONS = {
    "torch.nn.modules.activation.Sigmoid": "sigmoid",
    "torch.nn.modules.linear.Identity": "identity",
    "torch.nn.modules.activation.Tanh": "tanh",
}


def is_cross_encoder(path: Path) -> bool:
    """True for a sequence-classification model: a *ForSequenceClassification architecture in config.json, or a
    sentence-transformers CrossEncoder folder (config_sentence_transformers.json's model_type, or a Transformer module
    whose task is sequence-classification)."""
    config = read_json(path / "config.json", dict)
    archs = config.get("architectures") or []
    if isinstance(archs, list) and any(isinstance(a, str) and a.endswith("ForSequenceClassification") for a in archs):
        return True
    st = path / "config_sentence_transformers.json"
    if st.is_file() and read_json(st, dict).get("model_type") == "CrossEncoder":
        return True
    module = path / "sentence_bert_config.json"
    return module.is_file() and read_json(module, dict).get("transformer_task") == "sequence-classification"


def activation_of(path: Path, num_labels: int) -> tuple[str, str]:
    """(activation, where it came from) as sentence-transformers' CrossEncoder resolves it: the saved activation_fn
    (config_sentence_transformers.json, config.json's sentence_transformers entry, or <v4's
    sbert_ce_default_activation_function), else Sigmoid for one label and Identity for more. A path outside torch is
    not trusted by sentence-transformers either (it falls back to the default, as here, with a note)."""
    default = "sigmoid" if num_labels == 1 else "identity"
    found = None
    st = path / "config_sentence_transformers.json"
    if st.is_file():
        found = (read_json(st, dict).get("activation_fn"), st.name)
    config = read_json(path / "config.json", dict)
    if not (found and found[0]):
        entry = config.get("sentence_transformers")
        if isinstance(entry, dict) and entry.get("activation_fn"):
            found = (entry["activation_fn"], "config.json (sentence_transformers.activation_fn)")
        elif config.get("sbert_ce_default_activation_function"):
            found = (config["sbert_ce_default_activation_function"], "config.json (sbert_ce_default_activation_function)")
    if not (found and found[0]):
        return default, f"default for num_labels={num_labels}"
    fn, where = found
    if not isinstance(fn, str):
        raise OptionError(f"{path / where.split(' ')[0]}: activation_fn {fn!r} is not a class path; fix the file")
    if not fn.startswith("torch."):
        return default, f"{where} names {fn!r}, which sentence-transformers does not trust without trust_remote_code; default used"
    if fn not in ACTIVATIONS:
        raise OptionError(f"{path}: activation_fn {fn!r} ({where}) is not supported; supported: "
                          f"{', '.join(ACTIVATIONS)}. Save the CrossEncoder with one of them, or with Identity to get raw logits")
    return ACTIVATIONS[fn], where


def check_pair_template(path: Path) -> None:
    """Refuse a cross-encoder that sentence-transformers' CrossEncoder (v6) feeds through its chat template: its saved
    Transformer module lists the "message" modality, or nothing is saved and the tokenizer has a chat template (then
    each pair is rendered as query/document messages, the published LLM rerankers' prompt). The runtime scores
    tokenizer(query, document), so the scores would differ without any error."""
    module = path / "sentence_bert_config.json"
    saved = read_json(module, dict).get("modality_config") if module.is_file() else None
    if isinstance(saved, dict):
        if "message" not in saved:
            return
        found = [f"{module.name} (modality_config: message)"]
    else:
        config = path / "tokenizer_config.json"
        found = [name for name in ("chat_template.jinja", "chat_template.json") if (path / name).is_file()]
        if config.is_file() and read_json(config, dict).get("chat_template"):
            found.append("tokenizer_config.json (chat_template)")
    if found:
        raise OptionError(f"{path}: sentence-transformers renders each (query, document) pair through the chat template "
                          f"({', '.join(found)}), which the reranker runtime does not (it scores tokenizer(query, "
                          "document)). Save the CrossEncoder with the text modality only (drop the chat template), and "
                          "put the prompt in the texts themselves, e.g. query=prefix + query, document=document + suffix")
