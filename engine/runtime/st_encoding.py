"""The pieces of a transformers tokenizer's answer, without transformers: BatchEncoding, the tensor conversion, the
padding / truncation strategy names, decode's clean-up, and tokenizer_config.json (used by st_tokenizer)."""
from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import numpy as np

from ..extras import require

def load_tokenizer_config(folder: Path | None) -> dict:
    """special_tokens_map.json and tokenizer_config.json of a folder, merged ({} when absent or unreadable)."""
    config: dict = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = Path(folder) / name if folder is not None else None
        if path is not None and path.is_file():
            try:
                config.update(json.loads(path.read_text()))
            except (OSError, ValueError):
                pass
    return config


def token_content(token) -> str | None:
    return token.get("content") if isinstance(token, dict) else token


def strategy(value, table: dict, what: str) -> str | None:
    """'longest' / 'max_length' / ... from True, False, None, a string or transformers' own enum."""
    value = value.value if isinstance(value, Enum) else value
    if value is True:
        return next(iter(table))
    if value is False or value is None:
        return None
    if value not in table:
        raise ValueError(f"{value!r} is not a valid {what}; choose one of {list(table)} (or True / False)")
    return table[value]


def as_tensors(data: dict, tensor_type) -> dict:
    """Lists of ids as numpy arrays ('np') or torch tensors ('pt'), as transformers' BatchEncoding converts them."""
    tensor_type = tensor_type.value if isinstance(tensor_type, Enum) else tensor_type
    if tensor_type not in ("np", "pt"):
        raise ValueError(f"return_tensors={tensor_type!r}: this tokenizer returns 'np' (numpy) or 'pt' (torch)")
    torch = require("torch", "export", "return_tensors='pt'") if tensor_type == "pt" else None
    out = {}
    for key, value in data.items():
        ragged = len({len(v) for v in value if isinstance(v, (list, tuple))}) > 1
        try:
            if torch is not None:
                out[key] = torch.tensor(value, dtype=torch.int64)
            elif ragged:  # numpy keeps rows of different lengths as an object array, as transformers does
                out[key] = np.empty(len(value), dtype=object)
                out[key][:] = [np.asarray(v) for v in value]
            else:
                out[key] = np.asarray(value, dtype=np.int64)
        except (ValueError, TypeError) as err:
            raise ValueError("Unable to create tensor, you should probably activate truncation and/or padding with "
                             f"'padding=True' 'truncation=True' to have batched tensors with the same length ({key})") from err
    return out


def py_ids(ids):
    """Token ids as Python ints and lists (from numpy arrays and torch tensors too)."""
    return ids.tolist() if hasattr(ids, "tolist") else ids


def clean_up_tokenization(text: str) -> str:
    """transformers' clean-up of spaces before punctuation and English contractions."""
    for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                          (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(before, after)
    return text


class BatchEncoding(dict):
    """What the tokenizer returns: input_ids, token_type_ids, attention_mask, ... as keys and as attributes, plus the
    Rust encodings, as transformers.BatchEncoding."""

    def __init__(self, data: dict, encodings: list | None = None) -> None:
        super().__init__(data)
        self._encodings = encodings

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def encodings(self) -> list | None:
        return self._encodings

    def tokens(self, batch_index: int = 0) -> list[str]:
        return self._encodings[batch_index].tokens

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        return self._encodings[batch_index].word_ids

    def to(self, device) -> "BatchEncoding":
        """The tensors moved to device (torch tensors only, as in transformers)."""
        return BatchEncoding({k: v.to(device) if hasattr(v, "to") else v for k, v in self.items()}, self._encodings)
