"""encode's answers in sentence-transformers' types: torch tensors where it returns them (when torch is importable;
numpy otherwise), its empty answers, output_value=None's per-text dicts, and Embedder.device."""
from __future__ import annotations

import importlib
from enum import Enum
from functools import lru_cache

import numpy as np

from ..errors import ConfigError
from .similarity import SIMILARITY_FUNCTIONS


@lru_cache(maxsize=None)
def optional_torch():
    """torch when it is importable, else None (imported by name: the runtime never imports torch at module level)."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        return None


def as_st_tensor(x):
    """A numpy result as sentence-transformers returns it: a torch tensor when torch is importable, else numpy."""
    torch = optional_torch()
    return torch.from_numpy(np.ascontiguousarray(x)) if torch is not None else x


class Device(str):
    """Where an Embedder runs: equal to and printed as the plain string ('cpu', 'cuda'), with torch.device's .type
    and .index, so both `emb.device == "cpu"` and `emb.device.type` work."""

    @property
    def type(self) -> str:
        return self.partition(":")[0]

    @property
    def index(self) -> int | None:
        index = self.partition(":")[2]
        return int(index) if index else None


def similarity_name(value) -> str:
    """A similarity function's name from a name or a SimilarityFunction member (None: 'cosine', the default)."""
    value = value.value if isinstance(value, Enum) else value
    if value is None:
        return "cosine"
    if value not in SIMILARITY_FUNCTIONS:
        raise ConfigError(f"similarity_fn_name must be one of {', '.join(SIMILARITY_FUNCTIONS)} or a "
                          f"SimilarityFunction member, got {value!r}")
    return value


def empty_answer(output_value, convert_to_numpy: bool, convert_to_tensor: bool):
    """What SentenceTransformer.encode([]) returns: [] for token or all outputs and for convert_to_numpy=False,
    np.array([]) (shape (0,), float64), or with convert_to_tensor an empty float32 tensor."""
    if output_value != "sentence_embedding":
        return []
    if convert_to_tensor:
        return as_st_tensor(np.zeros(0, dtype=np.float32))
    return np.array([]) if convert_to_numpy else []


def sentence_answer(emb: np.ndarray, single: bool, convert_to_numpy: bool, convert_to_tensor: bool):
    """(N, D) sentence embeddings shaped as encode returns them: the row of a single text, a torch tensor with
    convert_to_tensor (numpy when torch is not importable), a list of rows with convert_to_numpy=False."""
    out = emb[0] if single else emb
    if convert_to_tensor:
        return as_st_tensor(out)
    return out if convert_to_numpy or single else list(out)


def all_outputs(ids: list[np.ndarray], tokens: list[np.ndarray], sentence: np.ndarray, with_types: bool) -> list[dict]:
    """output_value=None: per text, what the model saw and gave (input_ids, token_type_ids, attention_mask,
    modality, token_embeddings, sentence_embedding), as sentence-transformers' dicts, with padding removed."""
    convert, out = as_st_tensor, []
    for i, row in enumerate(ids):
        item = {"input_ids": convert(row)}
        if with_types:
            item["token_type_ids"] = convert(np.zeros_like(row))
        item |= {"attention_mask": convert(np.ones_like(row)), "modality": "text",
                 "token_embeddings": convert(tokens[i]), "sentence_embedding": convert(sentence[i])}
        out.append(item)
    return out
