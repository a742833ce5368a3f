"""Embedder: the stateful object that holds a backend and encodes text like SentenceTransformer.encode.

The pipeline is tokenize -> batch (token budgets, prefetch thread) -> backend.run -> a head's post-processing ->
collect in input order; which backend and which heads come from the export's manifest, so the encode methods below
only choose a head and shape the answer the way sentence-transformers does.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from export.manifest import model_io

from ..config import DEFAULT_MAX_BATCH_TOKENS, EmbedderConfig
from ..errors import ConfigError
from ..extras import require
from .backend import Backend
from .backends import open_backend
from .batching import Batch, id_windows, text_windows
from .checks import check_against_manifest, check_encode_options, progress_bar, texts_argument
from .heads import HEADS, collect
from .models import load_export, resolve_export
from .postprocess import aggregate_chunks, l2_normalize, quantize
from .prompts import apply_prompt, prompt_named
from .similarity import similarity, similarity_pairwise
from .stages import BatchPlan, EncodeStats, run_stages
from .tokenize import check_chunking, check_texts, chunk_windows, configure_tokenizer, load_tokenizer, tokenize

SORT_WINDOW = 8192  # texts sorted together; bounds memory while keeping padding low


@dataclass(frozen=True)
class ChunkEmbeddings:
    """Per-chunk vectors of long texts: embeddings (C, D), text_index (C,), tokens (C,) content tokens per chunk."""

    embeddings: NDArray[np.float32]
    text_index: NDArray[np.int64]
    tokens: NDArray[np.int64]


@dataclass(frozen=True)
class Sequences:
    """Texts as the model's input sequences, for callers that pack their own batches (the server's batcher)."""

    ids: list[NDArray[np.int64]]  # one (t_s,) array per sequence, special tokens included
    owner: NDArray[np.int64]  # (S,) index of the text each sequence belongs to (ascending)
    weights: NDArray[np.float32] | None  # (S,) content tokens per chunk with long_text="chunk"; None: one sequence per text
    full_tokens: NDArray[np.int64]  # (N,) tokens per text before truncation, special tokens included

    @property
    def tokens(self) -> NDArray[np.int64]:
        """(N,) tokens the model sees per text (all its sequences)."""
        lengths = np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))
        return np.bincount(self.owner, weights=lengths, minlength=len(self.full_tokens)).astype(np.int64)


class Embedder:
    """Encode texts with an exported model (drop-in for SentenceTransformer.encode).

    Embedder(model, **options): options are EmbedderConfig's fields (device, precision, max_length, ...).
    """

    def __init__(self, model: str | Path | None = None, **options) -> None:
        self._setup(EmbedderConfig(model=str(model) if model is not None else None, **options))

    @classmethod
    def from_config(cls, cfg: EmbedderConfig) -> "Embedder":
        """Build from a frozen EmbedderConfig (what the CLI and pipelines use)."""
        self = cls.__new__(cls)
        self._setup(cfg)
        return self

    @classmethod
    def from_backend(cls, backend: Backend, tokenizer: Tokenizer, manifest: dict, cfg: EmbedderConfig | None = None,
                     model_dir: str | Path | None = None) -> "Embedder":
        """An Embedder over a backend that is already open (a fake one in tests, or one a caller built itself);
        manifest describes the model as an export's manifest.json does."""
        self = cls.__new__(cls)
        self._attach(cfg or EmbedderConfig(), Path(model_dir or "."), manifest, tokenizer, backend)
        return self

    def _setup(self, cfg: EmbedderConfig) -> None:
        folder = resolve_export(cfg)
        manifest = load_export(folder)
        check_against_manifest(cfg, manifest, folder)
        tokenizer = load_tokenizer(folder, cfg.max_length or manifest["max_length"])
        check_chunking(tokenizer, cfg.max_length or manifest["max_length"], cfg.stride_for(cfg.max_length or manifest["max_length"]))
        self._attach(cfg, folder, manifest, tokenizer, open_backend(folder, "embed.onnx", manifest, cfg.device, cfg.threads))

    def _attach(self, cfg: EmbedderConfig, folder: Path, manifest: dict, tokenizer: Tokenizer, backend: Backend) -> None:
        self.config, self.model_dir, self.manifest, self.backend = cfg, folder, manifest, backend
        self.max_length = cfg.max_length or manifest["max_length"]
        self.dim = int(manifest["embedding_dim"])
        self.tokenizer = configure_tokenizer(tokenizer, self.max_length)
        self.input_kind, self.heads = model_io(manifest)  # "text" or "pair"; head name -> embed.onnx output
        self.device = backend.device
        self.providers = backend.providers
        self.max_batch_tokens = cfg.max_batch_tokens or DEFAULT_MAX_BATCH_TOKENS[self.device]
        self._inspect_backend = None
        self.stats = EncodeStats()
        self.similarity_fn_name = manifest.get("similarity_fn_name") or "cosine"

    def reset_stats(self) -> None:
        """Zero the cumulative counters."""
        self.stats = EncodeStats()

    def encode(self, inputs: str | list[str] | None = None, prompt_name: str | None = None, prompt: str | None = None,
               batch_size: int | None = None, show_progress_bar: bool | None = None,
               output_value: str | None = "sentence_embedding", precision: str = "float32", convert_to_numpy: bool = True,
               convert_to_tensor: bool = False, device: str | None = None, normalize_embeddings: bool = False,
               truncate_dim: int | None = None, pool: None = None, chunk_size: int | None = None, *,
               sentences: str | list[str] | None = None):
        """Embed texts: (N, D) float32 (1-D for a single string), SentenceTransformer.encode's names, order and semantics.

        batch_size caps rows per batch (the token budget packs batches either way); device must be None or this
        Embedder's own; pool and chunk_size (multi-process encoding) are not needed and must be None. sentences= is
        the name sentence-transformers used before version 6.
        """
        texts_in = texts_argument(inputs, sentences)
        single = isinstance(texts_in, str)
        texts = [texts_in] if single else list(texts_in)
        check_texts(texts)
        check_encode_options(self, precision, output_value, device, pool, truncate_dim)
        texts = apply_prompt(self.manifest, texts, prompt_name, prompt)
        self.stats.texts += len(texts)
        if output_value == "token_embeddings":
            tokens = self._encode_texts(texts, "tokens", batch_size, False)
            return tokens[0] if single else tokens
        if self.config.long_text == "chunk":
            chunks = self.encode_chunks(texts, batch_size=batch_size, _prompted=True)
            emb = aggregate_chunks(chunks.embeddings, chunks.text_index, chunks.tokens.astype(np.float32), len(texts))
            if self.manifest["normalize"]:
                emb = l2_normalize(emb)
        else:
            emb = self._encode_texts(texts, "pooled", batch_size, bool(show_progress_bar))
        if truncate_dim:  # Matryoshka: truncate, then normalize (as sentence-transformers does)
            emb = emb[:, :truncate_dim]
        if normalize_embeddings:
            emb = l2_normalize(emb)
        emb = quantize(emb, precision)
        out = emb[0] if single else emb
        if convert_to_tensor:
            torch = require("torch", "export", "convert_to_tensor=True")
            return torch.from_numpy(np.ascontiguousarray(out))
        return out if convert_to_numpy or single else list(out)

    def similarity(self, embeddings1, embeddings2) -> NDArray[np.float32]:
        """(N, M) cosine similarities, as SentenceTransformer.similarity (numpy instead of a torch tensor)."""
        return similarity(embeddings1, embeddings2, self.similarity_fn_name)

    def similarity_pairwise(self, embeddings1, embeddings2) -> NDArray[np.float32]:
        """(N,) cosine similarity of each pair of rows, as SentenceTransformer.similarity_pairwise."""
        return similarity_pairwise(embeddings1, embeddings2, self.similarity_fn_name)

    def get_sentence_embedding_dimension(self) -> int:
        """Width of the sentence embedding (sentence-transformers' name before 6.2)."""
        return self.dim

    def get_embedding_dimension(self) -> int:
        """Width of the sentence embedding (sentence-transformers' name since 6.2)."""
        return self.dim

    @property
    def max_seq_length(self) -> int:
        """Tokens per text (sentence-transformers' name for max_length); settable up to the export's max_length."""
        return self.max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= self.manifest["max_length"]:
            raise ConfigError(f"max_seq_length must be an integer in 2..{self.manifest['max_length']} "
                              f"(the export's max_length), got {value!r}")
        self.max_length = value
        self.tokenizer.enable_truncation(max_length=value)

    def encode_query(self, inputs=None, **kwargs):
        """encode with the model's 'query' prompt, when its metadata defines one."""
        return self.encode(inputs, prompt_name=kwargs.pop("prompt_name", prompt_named(self.manifest, "query")), **kwargs)

    def encode_document(self, inputs=None, **kwargs):
        """encode with the model's 'document' (or 'passage' / 'corpus') prompt, when defined."""
        name = prompt_named(self.manifest, "document", "passage", "corpus")
        return self.encode(inputs, prompt_name=kwargs.pop("prompt_name", name), **kwargs)

    def encode_chunks(self, sentences: list[str], batch_size: int | None = None, _prompted: bool = False) -> ChunkEmbeddings:
        """Split each text into max_length token windows (overlapping by chunk_stride) and embed every window."""
        texts = list(sentences)
        check_texts(texts)
        if not _prompted:
            texts = apply_prompt(self.manifest, texts, None, None)
        stride = self.config.stride_for(self.max_length)
        ids, owner = chunk_windows(self.tokenizer, texts, self.max_length, stride)
        emb = self._collect(id_windows(ids, SORT_WINDOW), len(ids), "pooled", batch_size, False)
        if not _prompted:  # encode() counts its own texts
            self.stats.texts += len(texts)
        specials = len(self.tokenizer.encode("").ids)
        tokens = np.fromiter((len(x) - specials for x in ids), dtype=np.int64, count=len(ids))
        return ChunkEmbeddings(embeddings=emb, text_index=owner, tokens=np.maximum(tokens, 1))

    # -- hooks for callers that schedule batches themselves (engine.serve): sequences -> padded batches -> join ----
    @property
    def pad_id(self) -> int:
        return int(self.manifest["pad_token_id"])

    @property
    def pad_multiple(self) -> int:
        """Padded lengths are rounded up to this (8 on CUDA for tensor cores, 1 on CPU)."""
        return 8 if self.device == "cuda" else 1

    def sequences(self, texts: list[str], prompt_name: str | None = None) -> Sequences:
        """Tokenize texts as encode() does (prompt, then truncation or chunk windows per long_text); run nothing."""
        check_texts(texts)
        texts = apply_prompt(self.manifest, list(texts), prompt_name, None)
        tk = tokenize(self.tokenizer, texts)
        if self.config.long_text != "chunk":
            return Sequences(tk.ids, np.arange(len(texts), dtype=np.int64), None, tk.full_tokens)
        ids, owner = chunk_windows(self.tokenizer, texts, self.max_length, self.config.stride_for(self.max_length))
        specials = len(self.tokenizer.encode("").ids)
        weights = np.fromiter((max(len(x) - specials, 1) for x in ids), dtype=np.float32, count=len(ids))
        return Sequences(ids, owner, weights, tk.full_tokens)

    def embed_batch(self, batch: Batch) -> NDArray[np.float32]:
        """Pooled vectors (B, D) float32 of one padded batch (rows in the batch's order); counted in stats."""
        out = self._head_output(batch, "pooled")
        self.stats.real_tokens += batch.real_tokens
        self.stats.padded_tokens += batch.input_ids.size
        self.stats.batches += 1
        return HEADS["pooled"].post(batch, out)

    def join_sequences(self, seqs: Sequences, emb: NDArray[np.float32]) -> NDArray[np.float32]:
        """Per-text vectors (N, D) from per-sequence vectors emb (S, D): chunks averaged by tokens, as encode() does."""
        if seqs.weights is None:
            return emb
        out = aggregate_chunks(emb, seqs.owner, seqs.weights, len(seqs.full_tokens))
        return l2_normalize(out) if self.manifest["normalize"] else out

    def inspect(self, texts: str | list[str]):
        """Hidden states and attentions per text from the introspection graph (see engine.runtime.introspect)."""
        from .introspect import run_inspection

        if self._inspect_backend is None:
            self._inspect_backend = open_backend(self.model_dir, "inspect.onnx", self.manifest, self.device,
                                                 self.config.threads)
        texts = [texts] if isinstance(texts, str) else list(texts)
        return run_inspection(self._inspect_backend, self.tokenizer, texts, self.manifest["pad_token_id"], self.max_length)

    # -- the pipeline: windows of sequences -> padded batches -> backend -> head -> input order ---------------------
    def _head_output(self, batch: Batch, head: str) -> np.ndarray:
        """The raw graph output a head reads, for one padded batch."""
        name = self.heads[head]
        return self.backend.run(batch, [name])[name]

    def _encode_texts(self, texts: list, head: str, batch_size: int | None, progress: bool):
        """Tokenize (truncating to max_length) and run every text through head, in input order."""
        if head not in self.heads:
            raise ConfigError(f"{self.model_dir} was exported without the {head!r} head; re-export it with "
                              f"'engine export MODEL DIR{HEAD_EXPORT_FLAG.get(head, '')}'")
        truncated: list[int] = []
        result = self._collect(text_windows(self.tokenizer, texts, SORT_WINDOW, truncated), len(texts), head,
                               batch_size, progress)
        self.stats.truncated += sum(truncated)
        return result

    def _collect(self, windows, n: int, head: str, batch_size: int | None, progress: bool):
        """Run n sequences' windows through head: (n, D) float32 for the pooled head, a list for ragged ones."""
        plan = BatchPlan(self.max_batch_tokens, batch_size, self.pad_id, self.pad_multiple)
        bar = progress_bar(n, progress)
        results = run_stages(windows, lambda batch: self._head_output(batch, head), plan, self.stats)
        out = collect(results, n, HEADS[head], (self.dim,), bar.update if bar else None)
        if bar:
            bar.close()
        return out

    def __repr__(self) -> str:
        return (f"Embedder(model_dir={str(self.model_dir)!r}, device={self.device!r}, precision={self.manifest['precision']!r}, "
                f"dim={self.dim}, max_length={self.max_length})")


HEAD_EXPORT_FLAG = {"tokens": " --token-embeddings"}  # the export option that adds a head, for the missing-head message
