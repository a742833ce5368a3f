"""Load a model folder's tokenizer and encoder for export, refusing hostile folders as early as each check can run:
config sizes before anything is built, the vocabulary before the model, the weights right after loading them."""
from __future__ import annotations

from .limits import check_config_sizes
from .source import ModelSource, load_model, load_tokenizer, read_json
from .vocab import check_ids_fit, check_reads_text, check_vocabulary_files
from .weights import check_finite_weights


def load_checked(src: ModelSource, trust_remote_code: bool = False, allow_large_config: bool = False, task: str = "embed"):
    """(model, missing, tokenizer) as load_model (for task "embed" or "rerank") and load_tokenizer give them, after
    every check passed."""
    config_file = src.path / "config.json"
    config = read_json(config_file, dict)
    sizes = check_config_sizes(config, config_file, allow_large_config)
    check_vocabulary_files(src.path)
    tokenizer = load_tokenizer(src, trust_remote_code)
    check_reads_text(tokenizer, src.path)
    check_ids_fit(tokenizer, sizes.get("vocabulary"), f"config.json's vocab_size is {sizes.get('vocabulary', 0):,}: the "
                  "embedding table", src.path)
    model, missing = load_model(src, trust_remote_code, task)
    table = model.get_input_embeddings()
    rows = getattr(table, "num_embeddings", None)
    check_ids_fit(tokenizer, rows, f"the checkpoint's embedding table ({type(table).__name__})", src.path)
    check_finite_weights(model.state_dict().items(), str(src.path))
    return model, missing, tokenizer
