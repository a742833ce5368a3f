"""A parsed request's inputs as the model's sequences: texts through the Embedder's tokenizer (off the event loop, in
turns of bounded size, in one of two lanes), token ids as given, cut or split into windows exactly as texts are.

Two tokenizer threads ("lanes"): a request of at most SMALL_CHARS characters tokenizes in the small lane, so a
1-word request never waits behind a request of megabytes; larger requests share the large lane in turns of at most
TOKENIZE_SLICE texts and TOKENIZE_SLICE_CHARS characters (one text at least, itself bounded by --max-text-chars), so
they interleave with each other instead of queueing whole.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..runtime import Embedder, Sequences
from .errors import InvalidRequest, PayloadTooLarge
from .schemas import EmbedRequest, Limits

TOKENIZE_SLICE = 256  # texts per turn of the large lane: a 10,000-text request cannot hold it for long
TOKENIZE_SLICE_CHARS = 2**16  # characters per turn (at least one text): ~0.1 s of tokenizer time
SMALL_CHARS = 2**14  # a request of at most this many characters tokenizes in the small lane

Name = Callable[[int], str]  # input index -> how refusals name it ("input[3]", "inputs.sentences[2]")


def _lane(prefix: str) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix=prefix)


@dataclass
class Lanes:
    """The tokenizer threads: one for small requests, one shared in turns by large ones."""

    small: Executor = field(default_factory=lambda: _lane("engine-tokenize-small"))
    large: Executor = field(default_factory=lambda: _lane("engine-tokenize"))

    def for_chars(self, chars: int) -> Executor:
        return self.small if chars <= SMALL_CHARS else self.large

    def shutdown(self) -> None:
        self.small.shutdown()
        self.large.shutdown()


async def parse_in_lane(parse: Callable, body: bytes, limits: Limits, lanes: Lanes):
    """parse(body, limits): on the event loop for a small body, in the large lane for a large one (measuring and
    parsing megabytes of JSON takes tens to hundreds of milliseconds, which the loop must not spend)."""
    if len(body) <= SMALL_CHARS:
        return parse(body, limits)
    return await asyncio.get_running_loop().run_in_executor(lanes.large, parse, body, limits)


async def to_sequences(embedder: Embedder, req: EmbedRequest, name: Name, lanes: Lanes, limits: Limits) -> Sequences:
    """Tokenize off the event loop. Over max length: truncated (or windowed, --long-text chunk), or with truncate
    false a 413 naming the input; a token past the model's embedding table: a refusal naming the input."""
    if req.texts is not None:
        loop = asyncio.get_running_loop()
        if req.prompt_name is not None:
            _check_prompt(embedder, req.prompt_name)
        pool = lanes.for_chars(sum(map(len, req.texts)))
        parts = []
        for texts in turns(req.texts):
            try:
                parts.append(await loop.run_in_executor(pool, embedder.sequences, texts, req.prompt_name))
            except ValueError as err:  # a text the tokenizer cannot take
                raise InvalidRequest(str(err)) from None
        seqs = _concat(parts)
        _check_table(embedder, seqs, name, limits)
    else:
        seqs = token_sequences(embedder, req.token_ids, limits)
    if not req.truncate and seqs.weights is None:
        over = np.flatnonzero(seqs.full_tokens > embedder.max_length)
        if len(over):
            i = int(over[0])
            raise PayloadTooLarge(f"{name(i)} has {int(seqs.full_tokens[i])} tokens, more than the model's max length "
                                  f"{embedder.max_length}; shorten it, or send truncate: true to cut it there",
                                  name(i), "input_too_long")
    return seqs


def turns(texts: list[str]) -> Iterator[list[str]]:
    """Consecutive slices of texts: at most TOKENIZE_SLICE texts and TOKENIZE_SLICE_CHARS characters each (one text
    at least)."""
    start = 0
    while start < len(texts):
        stop, chars = start + 1, len(texts[start])
        while stop < len(texts) and stop - start < TOKENIZE_SLICE and chars + len(texts[stop]) <= TOKENIZE_SLICE_CHARS:
            chars += len(texts[stop])
            stop += 1
        yield texts[start:stop]
        start = stop


def token_sequences(embedder: Embedder, token_ids: list[list[int]], limits: Limits) -> Sequences:
    """Token-id inputs (each framed by the tokenizer's special tokens, checked at parsing) as the model's sequences,
    cut as a text is: over max length, the body is cut and the closing special tokens ([SEP]) kept; with --long-text
    chunk, the body is split into the windows runtime.tokenize.chunk_windows makes of a text."""
    max_length, prefix, suffix = embedder.max_length, list(limits.prefix), list(limits.suffix)
    full = np.fromiter((len(x) for x in token_ids), dtype=np.int64, count=len(token_ids))
    if embedder.config.long_text != "chunk":
        ids = [np.asarray(x if len(x) <= max_length else x[:max_length - len(suffix)] + suffix, dtype=np.int64)
               for x in token_ids]
        return Sequences(ids, np.arange(len(ids), dtype=np.int64), None, full)
    room = max_length - len(prefix) - len(suffix)
    stride = embedder.config.stride_for(max_length)
    windows, owner = [], []
    for i, x in enumerate(token_ids):
        body, start = x[len(prefix):len(x) - len(suffix)], 0
        while True:
            windows.append(np.asarray(prefix + body[start:start + room] + suffix, dtype=np.int64))
            owner.append(i)
            if start + room >= len(body):
                break
            start += room - stride
    specials = len(prefix) + len(suffix)
    weights = np.fromiter((max(len(w) - specials, 1) for w in windows), dtype=np.float32, count=len(windows))
    return Sequences(windows, np.asarray(owner, dtype=np.int64), weights, full)


def _check_prompt(embedder: Embedder, prompt_name: str) -> None:
    """An unknown prompt_name is refused before any text is tokenized (Embedder.sequences checks it, on no texts)."""
    try:
        embedder.sequences([], prompt_name)
    except ValueError as err:
        raise InvalidRequest(str(err), "prompt_name") from None


def _check_table(embedder: Embedder, seqs: Sequences, name: Name, limits: Limits) -> None:
    """With an export whose tokenizer has more ids than its model's embedding table (tokens added without resizing
    the model), a text that tokenizes to such an id is refused, naming it, instead of failing in the model."""
    rows = limits.table_rows
    if rows is None:
        return
    for k, x in enumerate(seqs.ids):
        if len(x) and int(x.max()) >= rows:
            token, where = int(x[np.argmax(x >= rows)]), name(int(seqs.owner[k]))
            raise InvalidRequest(f"{where} holds the token {embedder.rust_tokenizer.id_to_token(token)!r} (id {token}), "
                                 f"outside this model's embedding table of {rows} rows: the export's tokenizer has tokens "
                                 f"its model has no vectors for (added tokens, embeddings not resized); leave it out of "
                                 f"the text, or serve an export whose embeddings cover its tokenizer", where)


def _concat(parts: list[Sequences]) -> Sequences:
    """Sequences of consecutive slices of one request's texts, as one."""
    if len(parts) == 1:
        return parts[0]
    offsets = np.cumsum([0] + [len(p.full_tokens) for p in parts[:-1]])
    owner = np.concatenate([p.owner + off for p, off in zip(parts, offsets)])
    weights = None if parts[0].weights is None else np.concatenate([p.weights for p in parts])
    return Sequences([x for p in parts for x in p.ids], owner, weights, np.concatenate([p.full_tokens for p in parts]))
