"""Fast (Rust) tokenization without padding, with truncation counted and chunk windows for long texts."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from ..errors import ConfigError, ModelFolderError


@dataclass(frozen=True)
class Tokenized:
    """Token ids of a list of texts, unpadded."""

    ids: list[NDArray[np.int64]]  # one (t_i,) array per input, special tokens included
    truncated: NDArray[np.bool_]  # (N,) True where the input lost tokens to max_length
    full_tokens: NDArray[np.int64]  # (N,) tokens each input has before truncation, special tokens included
    type_ids: list[NDArray[np.int64]] | None = None  # one (t_i,) array of segment ids per text pair; None for texts


def load_tokenizer(model_dir: Path, max_length: int) -> Tokenizer:
    """Load tokenizer.json with our own truncation and no padding.

    Shipped tokenizer.json files often carry fixed padding / truncation (all-MiniLM-L6-v2: both at 128); reset them.
    """
    path = Path(model_dir) / "tokenizer.json"
    if not path.is_file():
        raise ModelFolderError(f"{model_dir} has no tokenizer.json; re-export the model with 'engine export'")
    return configure_tokenizer(Tokenizer.from_file(str(path)), max_length)


def configure_tokenizer(tok: Tokenizer, max_length: int) -> Tokenizer:
    """The runtime's settings on a tokenizer: no padding (batches pad themselves), truncation at max_length."""
    tok.no_padding()
    tok.enable_truncation(max_length=max_length)
    return tok


def check_texts(texts: list) -> None:
    """Raise TypeError naming the first item that is not a string, ValueError the first holding a lone surrogate."""
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is {type(t).__name__}, not str; every item must be a string (use '' for empty)")
        check_unicode(t, f"texts[{i}]")


def check_pairs(pairs: list) -> None:
    """Raise TypeError naming the first item that is not a pair of strings (a model whose input is text pairs),
    ValueError the first holding a lone surrogate."""
    for i, p in enumerate(pairs):
        if not (isinstance(p, (tuple, list)) and len(p) == 2 and all(isinstance(t, str) for t in p)):
            raise TypeError(f"inputs[{i}] is {type(p).__name__}, not a pair of strings; this model reads text pairs, "
                            "e.g. [(query, passage), ...]")
        for j, t in enumerate(p):
            check_unicode(t, f"inputs[{i}][{j}]")


def check_unicode(text: str, name: str) -> None:
    """Raise ValueError when text holds a lone surrogate (what Python makes of bytes that are not UTF-8, decoded with
    errors='surrogateescape'): it is not Unicode text, and the tokenizer cannot take it."""
    if text.isascii():  # O(1) in CPython: nearly every text stops here
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"{name} holds a lone surrogate ({text[err.start]!r} at character {err.start}): not Unicode "
                         "text, so it cannot be tokenized (it comes from bytes that are not UTF-8 decoded with "
                         "errors='surrogateescape', or from a JSON \\u escape without its pair); decode the bytes with "
                         "errors='replace' (or their real encoding), or remove it") from None


def tokenize(tok: Tokenizer, inputs: list) -> Tokenized:
    """Tokenize a batch (Rust, parallel) without padding: texts, or (text, text) pairs, which also get segment ids."""
    pairs = bool(inputs) and not isinstance(inputs[0], str)
    encodings = tok.encode_batch([tuple(p) for p in inputs] if pairs else inputs)
    ids = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
    truncated = np.fromiter((bool(e.overflowing) for e in encodings), dtype=bool, count=len(encodings))
    full = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
    if truncated.any():  # each overflowing piece repeats the special tokens; count its content once
        specials = len((tok.encode("", "") if pairs else tok.encode("")).ids)
        for i in np.flatnonzero(truncated):
            full[i] += sum(len(o.ids) - specials for o in encodings[i].overflowing)
    type_ids = [np.asarray(e.type_ids, dtype=np.int64) for e in encodings] if pairs else None
    return Tokenized(ids=ids, truncated=truncated, full_tokens=full, type_ids=type_ids)


def special_affixes(tok: Tokenizer) -> tuple[list[int], list[int]]:
    """Ids the post-processor puts before and after a single text ([CLS] / [SEP], <s> / </s>, Qwen3's trailing EOS)."""
    body = tok.encode("a", add_special_tokens=False).ids
    full = tok.encode("a").ids
    for start in range(len(full) - len(body) + 1):
        if full[start:start + len(body)] == body:
            return full[:start], full[start + len(body):]
    empty = tok.encode("").ids  # a post-processor that rewrites the text itself: assume one leading token
    sep_pos = 1 if len(empty) >= 2 else len(empty)
    return empty[:sep_pos], empty[sep_pos:]


def check_chunking(tok: Tokenizer, max_length: int, stride: int | None) -> None:
    """Raise ConfigError unless chunks of max_length tokens hold text and overlap by less than that (stride None: no chunking)."""
    if stride is None:
        return
    prefix, suffix = special_affixes(tok)
    room = max_length - len(prefix) - len(suffix)
    if room < 1:
        raise ConfigError(f"--long-text chunk needs room for text: max_length {max_length} holds only the "
                          f"{len(prefix) + len(suffix)} special tokens; pass --max-length {len(prefix) + len(suffix) + 1} or more")
    if not 0 <= stride < room:
        raise ConfigError(f"--chunk-stride {stride} must be in 0..{room - 1} for max_length {max_length} "
                          f"({room} text tokens per chunk); pass a smaller --chunk-stride")


def chunk_windows(tok: Tokenizer, texts: list[str], max_length: int, stride: int) -> tuple[list[NDArray[np.int64]], NDArray[np.int64]]:
    """Split each text into windows of at most max_length tokens (specials included) overlapping by stride.

    Returns the window ids and, per window, the index of its text.
    """
    prefix, suffix = special_affixes(tok)
    room = max_length - len(prefix) - len(suffix)
    check_chunking(tok, max_length, stride)
    tok.no_truncation()
    try:
        bodies = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    finally:
        tok.enable_truncation(max_length=max_length)
    windows, owner = [], []
    for i, body in enumerate(bodies):
        start = 0
        while True:
            piece = body[start:start + room]
            windows.append(np.asarray(prefix + piece + suffix, dtype=np.int64))
            owner.append(i)
            if start + room >= len(body):
                break
            start += room - stride
    return windows, np.asarray(owner, dtype=np.int64)
