"""(query, document) pairs as a cross-encoder's input sequences: truncated like sentence-transformers' CrossEncoder
(longest_first at max_length), or with long_text="chunk" split into windows of the document, each with the whole query
(only_second truncation with a stride), whose scores the Reranker joins by taking the max."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from ..errors import ConfigError
from .tokenize import check_pairs, check_unicode, tokenize


@dataclass(frozen=True)
class PairSequences:
    """Pairs as the model's input sequences, for callers that pack their own batches (the server's batcher)."""

    ids: list[NDArray[np.int64]]  # one (t_s,) array per sequence, special tokens included
    type_ids: list[NDArray[np.int64]]  # one (t_s,) array of segment ids per sequence (0: query, 1: document)
    owner: NDArray[np.int64]  # (S,) index of the pair each sequence belongs to (ascending)
    full_tokens: NDArray[np.int64]  # (N,) tokens per pair before truncation, special tokens included
    truncated: int  # pairs that lost tokens to max_length (0 with chunking)

    @property
    def chunked(self) -> bool:
        return len(self.ids) != len(self.full_tokens)


def check_pair_list(pairs) -> list[tuple[str, str]]:
    """pairs as a list of (str, str), or TypeError / ValueError naming the first bad item."""
    pairs = list(pairs)
    check_pairs(pairs)
    return [(p[0], p[1]) for p in pairs]


def check_query_documents(query, documents) -> list[str]:
    """rank()'s arguments: a string query and a list of string documents, or TypeError naming the bad one."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, got {type(query).__name__}")
    check_unicode(query, "query")
    if isinstance(documents, str) or not hasattr(documents, "__iter__"):
        raise TypeError(f"documents must be a list of strings, got {type(documents).__name__}")
    documents = list(documents)
    for i, d in enumerate(documents):
        if not isinstance(d, str):
            raise TypeError(f"documents[{i}] is {type(d).__name__}, not str; every document must be a string")
        check_unicode(d, f"documents[{i}]")
    return documents


def pair_sequences(tok: Tokenizer, pairs: list[tuple[str, str]], max_length: int, stride: int | None) -> PairSequences:
    """Tokenize pairs: truncated at max_length (stride None), or chunked over the document with stride tokens shared
    by neighbouring windows."""
    if not pairs:
        empty = np.zeros(0, dtype=np.int64)
        return PairSequences([], [], empty, empty, 0)
    if stride is None:
        tk = tokenize(tok, pairs)
        return PairSequences(tk.ids, tk.type_ids, np.arange(len(pairs), dtype=np.int64), tk.full_tokens,
                             int(tk.truncated.sum()))
    tok.enable_truncation(max_length=max_length, stride=stride, strategy="only_second")
    try:
        encodings = _encode_chunked(tok, pairs, max_length)
    finally:
        tok.enable_truncation(max_length=max_length)
    ids, type_ids, owner, full = [], [], [], []
    specials = len(tok.encode("", "").ids)
    for i, enc in enumerate(encodings):
        pieces = [enc] + list(enc.overflowing)
        for piece in pieces:
            ids.append(np.asarray(piece.ids, dtype=np.int64))
            type_ids.append(np.asarray(piece.type_ids, dtype=np.int64))
            owner.append(i)
        full.append(len(enc.ids) + sum(len(p.ids) - specials for p in enc.overflowing))
    return PairSequences(ids, type_ids, np.asarray(owner, dtype=np.int64), np.asarray(full, dtype=np.int64), 0)


def _encode_chunked(tok: Tokenizer, pairs: list[tuple[str, str]], max_length: int):
    try:
        return tok.encode_batch(pairs)
    except Exception:  # noqa: BLE001 - tokenizers raises a bare Exception when a query leaves no room
        for i, (query, _doc) in enumerate(pairs):
            try:
                tok.encode(query, "x")
            except Exception:  # noqa: BLE001
                tok.no_truncation()
                n = len(tok.encode(query, add_special_tokens=False).ids)
                raise ConfigError(f"pairs[{i}]: the query is {n} tokens, which leaves no room for the document in "
                                  f"max_length {max_length} with long_text 'chunk' (each chunk holds the whole query); "
                                  "shorten the query, raise max_length, or use long_text 'truncate'") from None
        raise


def join_max(scores: NDArray[np.float32], owner: NDArray[np.int64], n: int) -> NDArray[np.float32]:
    """Per-pair logits (n, L) from per-chunk logits (S, L): each pair's highest-scoring chunk (label 0 decides)."""
    out = np.full((n, scores.shape[1]), -np.inf, dtype=np.float32)
    best = np.full(n, -np.inf, dtype=np.float64)
    for s, i in enumerate(owner):
        if scores[s, 0] > best[i]:
            best[i] = scores[s, 0]
            out[i] = scores[s]
    return out
