"""Bounds on a model's config.json sizes, checked before any weight is allocated (a hostile or mistyped config must not
build a 100,000-layer model for minutes before running out of memory)."""
from __future__ import annotations

from pathlib import Path

from .errors import ModelSourceError

# field -> (the config keys that hold it across the supported architectures, the largest value allowed without
# allow_large_config). The bounds sit well above every real encoder (Qwen3-Embedding-8B: 36 layers, hidden 4096,
# vocabulary 151,669, 32,768 positions; gemma3_text: 262,144 tokens).
SIZE_FIELDS = {
    "layers": (("num_hidden_layers", "n_layers", "n_layer"), 96),
    "hidden size": (("hidden_size", "dim", "n_embd", "d_model"), 16_384),
    "intermediate size": (("intermediate_size", "hidden_dim", "n_inner"), 65_536),
    "attention heads": (("num_attention_heads", "n_heads", "n_head"), 256),
    "vocabulary": (("vocab_size",), 1_000_000),
    "positions": (("max_position_embeddings", "n_positions"), 131_072),
}
MAX_PARAMETERS = 16_000_000_000  # estimated; 64 GB of fp32 weights
# Architectures with a learned absolute position table (positions x hidden weights); the others rotate.
_ABSOLUTE_POSITIONS = ("bert", "roberta", "xlm-roberta", "distilbert", "mpnet", "electra")
_FLAG = "pass --allow-large-config to `engine export` (allow_large_config=True in ExportOptions) if you really mean it"


def check_config_sizes(config: dict, config_file: Path, allow_large: bool = False) -> dict:
    """Refuse sizes that are not positive integers (always) and sizes past the bounds (unless allow_large).

    Returns {field: value} for the fields the config sets.
    """
    sizes = {}
    for field, (keys, bound) in SIZE_FIELDS.items():
        key = next((k for k in keys if config.get(k) is not None), None)
        if key is None:
            continue
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            need = "an encoder needs at least 1 layer" if field == "layers" else f"the {field} must be at least 1"
            raise ModelSourceError(f"{config_file}: {key} {value!r} is not a positive integer ({need}); "
                                   "fix config.json or restore the model folder")
        if value > bound and not allow_large:
            raise ModelSourceError(f"{config_file}: {key} {value:,} is above the bound of {bound:,} ({field}), far beyond "
                                   f"real encoders; building it could take minutes and exhaust memory. Fix config.json, "
                                   f"or {_FLAG}")
        sizes[field] = value
    params = estimated_parameters(sizes, config.get("model_type", ""))
    if params > MAX_PARAMETERS and not allow_large:
        shown = ", ".join(f"{field} {value:,}" for field, value in sizes.items())
        raise ModelSourceError(f"{config_file}: about {params / 1e9:,.1f} billion parameters ({shown}), above the bound "
                               f"of {MAX_PARAMETERS / 1e9:g} billion ({params * 4 / 1e9:,.0f} GB of fp32 weights to build); "
                               f"fix config.json, or {_FLAG}")
    return sizes


def estimated_parameters(sizes: dict, model_type: str) -> int:
    """Embeddings plus per-layer attention (4 h^2) and feed-forward (2 h i) weights; a lower bound for gated FFNs."""
    hidden = sizes.get("hidden size", 0)
    inter = sizes.get("intermediate size", 4 * hidden)
    positions = sizes.get("positions", 0) if model_type in _ABSOLUTE_POSITIONS else 0
    return (sizes.get("vocabulary", 0) + positions) * hidden + sizes.get("layers", 0) * (4 * hidden * hidden + 2 * hidden * inter)
