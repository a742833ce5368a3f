"""Run the exporter's introspection graph (inspect.onnx): per-text hidden states and attentions, padding removed."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from ..errors import InputError
from .backend import Backend
from .batching import pad_batch
from .tokenize import check_texts, tokenize

# Bytes of attention probabilities one batch may produce: rows * layers * heads * T * T * 4 stays under this.
ATTENTION_BUDGET = 256 * 1024**2


@dataclass(frozen=True)
class Inspection:
    """What the encoder does with each text: one entry per text, in input order, trimmed to that text's tokens.

    For text i with t_i tokens (special tokens included, after truncation to max_length), L layers and H hidden units:

    - tokens[i]: list of t_i word pieces, `tokenizer.id_to_token` of each id ('[CLS]', 'then', '##ing', '[SEP]').
    - hidden_states[i]: float32 (L+1, t_i, H). Index 0 is the embedding output (word + position + type embeddings,
      LayerNorm), index l the output of transformer layer l; the same order as transformers' output_hidden_states.
    - attentions[i]: float32 (L, heads, t_i, t_i). attentions[i][l, h, q, k] is the softmax weight with which query
      token q attends to key token k in layer l (0-based, first transformer layer = 0), head h. Each row sums to 1.
    - attention_mask: int64 (N, T_max), the mask of the padded batch layout (1 for the t_i real tokens of row i, then
      0); `padded()` rebuilds the issue's batch-shaped arrays from it.
    - input_ids[i]: int64 (t_i,) token ids. truncated: bool (N,), True where the text lost tokens to max_length.

    The arrays are exactly those of the graph's padded run, sliced: padding never changes a real token's values
    because padded keys get zero weight.
    """

    tokens: list[list[str]]
    hidden_states: list[NDArray[np.float32]]
    attentions: list[NDArray[np.float32]]
    attention_mask: NDArray[np.int64]
    input_ids: list[NDArray[np.int64]]
    truncated: NDArray[np.bool_]

    @property
    def lengths(self) -> list[int]:
        """Tokens per text."""
        return [len(t) for t in self.tokens]

    @property
    def num_layers(self) -> int:
        """Transformer layers L (hidden states have L+1 entries)."""
        return int(self.attentions[0].shape[0])

    @property
    def num_heads(self) -> int:
        """Attention heads per layer."""
        return int(self.attentions[0].shape[1])

    def padded(self) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Batch-shaped copies: hidden_states (L+1, N, T, H) and attentions (L, N, heads, T, T), zeros on padding."""
        n, t = self.attention_mask.shape
        first = self.hidden_states[0]
        hidden = np.zeros((first.shape[0], n, t, first.shape[2]), dtype=np.float32)
        attn = np.zeros((self.num_layers, n, self.num_heads, t, t), dtype=np.float32)
        for i, (h, a) in enumerate(zip(self.hidden_states, self.attentions)):
            k = h.shape[1]
            hidden[:, i, :k] = h
            attn[:, i, :, :k, :k] = a
        return hidden, attn


def prepare_ids(tokenizer: Tokenizer, texts: list[str], max_length: int) -> tuple[list[NDArray[np.int64]], NDArray[np.bool_]]:
    """Tokenize for inspection: refuse empty texts, warn (once, naming them) about truncated ones."""
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    check_texts(texts)
    if not texts:
        raise InputError("no text to inspect; pass at least one non-empty text")
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        where = ", ".join(str(i) for i in empty[:10]) + (" ..." if len(empty) > 10 else "")
        raise InputError(f"text {where} is empty (or only whitespace); every text to inspect needs at least one word")
    tk = tokenize(tokenizer, texts)
    if tk.truncated.any():
        hit = np.flatnonzero(tk.truncated)
        where = ", ".join(str(i) for i in hit[:10]) + (" ..." if len(hit) > 10 else "")
        warnings.warn(f"{len(hit)} text(s) longer than max_length={max_length} tokens were truncated to {max_length} "
                      f"(text index {where}); only the first {max_length} tokens are inspected", UserWarning, stacklevel=3)
    return tk.ids, tk.truncated


def plan_rows(lengths: NDArray[np.int64], layers: int, heads: int, budget: int = ATTENTION_BUDGET) -> list[NDArray[np.int64]]:
    """Group texts, longest first, so that each batch's attention output stays within budget bytes."""
    order = np.argsort(-lengths, kind="stable")
    groups, start = [], 0
    while start < len(order):
        t = int(lengths[order[start]])
        rows = max(1, budget // max(1, layers * heads * t * t * 4))
        groups.append(order[start:start + rows])
        start += rows
    return groups


def run_inspection(backend: Backend, tokenizer: Tokenizer, texts: list[str], pad_id: int, max_length: int,
                   budget: int = ATTENTION_BUDGET) -> Inspection:
    """Tokenize, pad, run inspect.onnx batch by batch, and trim each text's outputs to its own tokens.

    Raises InputError for an empty text (or an empty list); warns (UserWarning) when a text was truncated to max_length.
    """
    ids, truncated = prepare_ids(tokenizer, texts, max_length)
    n = len(ids)
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=n)
    layers, heads = _graph_dims(backend)
    hidden: list = [None] * n
    attn: list = [None] * n
    for rows in plan_rows(lengths, layers, heads, budget):
        batch = pad_batch(ids, rows, pad_id)
        out = backend.run(batch, ["hidden_states", "attentions"])
        hs, at = out["hidden_states"], out["attentions"]
        # hs (L+1, B, T, H), at (L, B, heads, T, T)
        for r, i in enumerate(batch.index):
            t = int(lengths[i])
            hidden[i] = np.ascontiguousarray(hs[:, r, :t], dtype=np.float32)
            attn[i] = np.ascontiguousarray(at[:, r, :, :t, :t], dtype=np.float32)
    mask = (np.arange(int(lengths.max()))[None, :] < lengths[:, None]).astype(np.int64)
    tokens = [[tokenizer.id_to_token(int(x)) for x in row] for row in ids]
    return Inspection(tokens=tokens, hidden_states=hidden, attentions=attn, attention_mask=mask, input_ids=ids,
                      truncated=truncated)


def _graph_dims(backend: Backend) -> tuple[int, int]:
    """Layers and heads from the attentions output's static shape (L, batch, heads, T, T); large defaults when symbolic."""
    shape = backend.outputs["attentions"]
    layers = shape[0] if shape[0] is not None else 48
    heads = shape[2] if shape[2] is not None else 32  # symbolic after export: budget as for a large model
    return layers, heads
