"""A SparseEncoder as the server serves it (task 'sparse'): the hooks the embedding path calls on an Embedder
(sequences, embed_batch, pad_multiple, heads, rust_tokenizer), so POST /embed_sparse runs through the same parsing,
tokenizer lanes, batcher rounds, token budget, cancellation and metrics as /embed. The head "sparse" is ragged: one
(indices int32 ascending, values float32) per sequence, the export's max_active_dims applied."""
from __future__ import annotations

import numpy as np
from tokenizers import Tokenizer

from ..runtime import Sequences, SparseEncoder
from ..runtime.batching import Batch
from ..runtime.heads import SparseRow
from ..runtime.prompts import apply_prompt, prompt_named
from ..runtime.tokenize import check_texts, tokenize

SPARSE = "sparse"  # the batcher's head for a sparse encoder's rows


class ServedSparse:
    """A SparseEncoder with the Embedder's serving hooks; every other attribute is the encoder's own."""

    input_kind = "text"

    def __init__(self, encoder: SparseEncoder) -> None:
        self.encoder = encoder
        self.heads = {SPARSE: encoder.manifest["head_outputs"][SPARSE]}

    def __getattr__(self, name: str):
        return getattr(self.encoder, name)

    @property
    def rust_tokenizer(self) -> Tokenizer:
        return self.encoder.tokenizer

    @property
    def pad_multiple(self) -> int:
        """Padded lengths are rounded up to this (8 on CUDA, 1 on CPU), as SparseEncoder.encode pads."""
        return 8 if self.encoder.device == "cuda" else 1

    def sequences(self, texts: list[str], prompt_name: str | None = None) -> Sequences:
        """Texts tokenized as SparseEncoder.encode_sparse (the document side) does: prompt_name's prompt, else the
        model's document prompt (or its default prompt), truncated at max length; full_tokens before truncation."""
        check_texts(texts)
        prompts = self.encoder.prompts
        if prompt_name is not None and prompt_name not in prompts:
            raise ValueError(f"prompt_name {prompt_name!r} is not one of this model's prompts "
                             f"({', '.join(sorted(prompts)) or 'it has none'}); send one of them, or leave it out")
        name = prompt_name if prompt_name is not None else prompt_named(prompts, "document", "passage", "corpus")
        texts = apply_prompt(prompts, self.encoder.default_prompt_name, list(texts), name, None)
        tk = tokenize(self.encoder.tokenizer, texts)
        return Sequences(tk.ids, np.arange(len(texts), dtype=np.int64), None, tk.full_tokens)

    def embed_batch(self, batch: Batch, head: str = SPARSE) -> list[SparseRow]:
        """One padded batch -> its rows' (indices, values), in batch order (SparseEncoder.sparse_batch)."""
        if head != SPARSE:
            raise ValueError(f"a sparse encoder has the head {SPARSE!r} only, not {head!r}")
        return self.encoder.sparse_batch(batch)

    def reset_stats(self) -> None:
        self.encoder.reset_stats()
