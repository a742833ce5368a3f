"""A parsed request's inputs as the model's sequences: texts through the Embedder's tokenizer, token ids as given."""
from __future__ import annotations

import numpy as np

from ..runtime import Embedder, Sequences
from .errors import InvalidRequest, PayloadTooLarge
from .schemas import EmbedRequest


def to_sequences(embedder: Embedder, req: EmbedRequest, field: str) -> Sequences:
    """Tokenize (runs in the tokenizer thread). Over max length: truncated, or with truncate false a 413 naming it."""
    if req.texts is not None:
        try:
            seqs = embedder.sequences(req.texts, req.prompt_name)
        except ValueError as err:  # an unknown prompt_name
            raise InvalidRequest(str(err), "prompt_name") from None
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
