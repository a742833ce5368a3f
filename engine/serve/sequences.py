"""A parsed request's inputs as the model's sequences: texts through the Embedder's tokenizer (in the tokenizer
thread, a slice at a time), token ids as given."""
from __future__ import annotations

import asyncio
from concurrent.futures import Executor

import numpy as np

from ..runtime import Embedder, Sequences
from .errors import InvalidRequest, PayloadTooLarge
from .schemas import EmbedRequest

TOKENIZE_SLICE = 256  # texts per turn of the tokenizer thread: a 10,000-text request cannot hold it for long


async def to_sequences(embedder: Embedder, req: EmbedRequest, field: str, pool: Executor) -> Sequences:
    """Tokenize off the event loop. Over max length: truncated, or with truncate false a 413 naming the input."""
    if req.texts is not None:
        loop = asyncio.get_running_loop()
        parts = []
        for start in range(0, len(req.texts), TOKENIZE_SLICE):
            texts = req.texts[start:start + TOKENIZE_SLICE]
            try:
                parts.append(await loop.run_in_executor(pool, embedder.sequences, texts, req.prompt_name))
            except ValueError as err:  # an unknown prompt_name
                raise InvalidRequest(str(err), "prompt_name") from None
        seqs = _concat(parts)
    else:
        full = np.fromiter((len(x) for x in req.token_ids), dtype=np.int64, count=len(req.token_ids))
        ids = [np.asarray(x[: embedder.max_length], dtype=np.int64) for x in req.token_ids]
        seqs = Sequences(ids, np.arange(len(ids), dtype=np.int64), None, full)
    if not req.truncate and seqs.weights is None:
        over = np.flatnonzero(seqs.full_tokens > embedder.max_length)
        if len(over):
            i = int(over[0])
            raise PayloadTooLarge(f"{field}[{i}] has {int(seqs.full_tokens[i])} tokens, more than the model's max length "
                                  f"{embedder.max_length}; shorten it, or send truncate: true to cut it there",
                                  f"{field}[{i}]", "input_too_long")
    return seqs


def _concat(parts: list[Sequences]) -> Sequences:
    """Sequences of consecutive slices of one request's texts, as one."""
    if len(parts) == 1:
        return parts[0]
    offsets = np.cumsum([0] + [len(p.full_tokens) for p in parts[:-1]])
    owner = np.concatenate([p.owner + off for p, off in zip(parts, offsets)])
    weights = None if parts[0].weights is None else np.concatenate([p.weights for p in parts])
    return Sequences([x for p in parts for x in p.ids], owner, weights, np.concatenate([p.full_tokens for p in parts]))
