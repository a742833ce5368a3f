"""Embedder: the stateful object that holds a session and encodes text like SentenceTransformer.encode."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from export import OptionError, read_manifest
from export.manifest import verify_files

from ..config import DEFAULT_MAX_BATCH_TOKENS, EmbedderConfig
from ..extras import require
from .batching import Batch, id_windows, text_windows
from .checks import check_against_manifest, check_encode_options, progress_bar, texts_argument
from .models import open_graph, resolve_export
from .postprocess import aggregate_chunks, l2_normalize, quantize
from .session import choose_device, run_batch, session_device
from .similarity import similarity, similarity_pairwise
from .stages import BatchPlan, EncodeStats, run_stages, scatter, scatter_tokens
from .tokenize import check_chunking, check_texts, chunk_windows, load_tokenizer, tokenize

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
    """Encode texts with an exported model under onnxruntime (drop-in for SentenceTransformer.encode)."""

    def __init__(self, model: str | Path | None = None, device: str = "auto", precision: str | None = None,
                 max_length: int | None = None, max_batch_tokens: int | None = None,
                 pooling: str | None = None, normalize: bool | None = None, threads: int | None = None,
                 long_text: str = "truncate", chunk_stride: int | None = None, cache_dir: str | None = None) -> None:
        cfg = EmbedderConfig(model=str(model) if model is not None else None, device=device, precision=precision,
                             max_length=max_length, max_batch_tokens=max_batch_tokens, pooling=pooling,
                             normalize=normalize, threads=threads, long_text=long_text, chunk_stride=chunk_stride,
                             cache_dir=cache_dir)
        self._setup(cfg)

    @classmethod
    def from_config(cls, cfg: EmbedderConfig) -> "Embedder":
        """Build from a frozen EmbedderConfig (what the CLI and pipelines use)."""
        self = cls.__new__(cls)
        self._setup(cfg)
        return self

    def _setup(self, cfg: EmbedderConfig) -> None:
        self.config = cfg
        self.model_dir = resolve_export(cfg)
        self.manifest = read_manifest(self.model_dir)
        verify_files(self.model_dir, self.manifest)  # sizes: a truncated or replaced graph is named, not parsed
        check_against_manifest(cfg, self.manifest, self.model_dir)
        self.max_length = cfg.max_length or self.manifest["max_length"]
        self.dim = int(self.manifest["embedding_dim"])
        self.tokenizer = load_tokenizer(self.model_dir, self.max_length)
        check_chunking(self.tokenizer, self.max_length, cfg.stride_for(self.max_length))
        self._session = open_graph(self.model_dir, "embed.onnx", self.manifest, choose_device(cfg.device), cfg.threads,
                                   requested=cfg.device)
        self.device = session_device(self._session)
        self.providers = self._session.get_providers()
        self.max_batch_tokens = cfg.max_batch_tokens or DEFAULT_MAX_BATCH_TOKENS[self.device]
        self._inspect_session = None
        self._outputs = {o.name for o in self._session.get_outputs()}
        self.stats = EncodeStats()
        self.similarity_fn_name = self.manifest.get("similarity_fn_name") or "cosine"

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
        texts = self._apply_prompt(texts, prompt_name, prompt)
        self.stats.texts += len(texts)
        if output_value == "token_embeddings":
            tokens = self._token_embeddings(texts, batch_size)
            return tokens[0] if single else tokens
        if self.config.long_text == "chunk":
            chunks = self.encode_chunks(texts, batch_size=batch_size, _prompted=True)
            emb = aggregate_chunks(chunks.embeddings, chunks.text_index, chunks.tokens.astype(np.float32), len(texts))
            if self.manifest["normalize"]:
                emb = l2_normalize(emb)
        else:
            windows = text_windows(self.tokenizer, texts, SORT_WINDOW, truncated := [])
            emb = self._run(windows, len(texts), batch_size, bool(show_progress_bar))
            self.stats.truncated += sum(truncated)
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
            raise OptionError(f"max_seq_length must be an integer in 2..{self.manifest['max_length']} "
                              f"(the export's max_length), got {value!r}")
        self.max_length = value
        self.tokenizer.enable_truncation(max_length=value)

    def encode_query(self, inputs=None, **kwargs):
        """encode with the model's 'query' prompt, when its metadata defines one."""
        return self.encode(inputs, prompt_name=kwargs.pop("prompt_name", self._prompt_named("query")), **kwargs)

    def encode_document(self, inputs=None, **kwargs):
        """encode with the model's 'document' (or 'passage' / 'corpus') prompt, when defined."""
        name = next((n for n in ("document", "passage", "corpus") if n in self.manifest["prompts"]), None)
        return self.encode(inputs, prompt_name=kwargs.pop("prompt_name", name), **kwargs)

    def encode_chunks(self, sentences: list[str], batch_size: int | None = None, _prompted: bool = False) -> ChunkEmbeddings:
        """Split each text into max_length token windows (overlapping by chunk_stride) and embed every window."""
        texts = list(sentences)
        check_texts(texts)
        if not _prompted:
            texts = self._apply_prompt(texts, None, None)
        stride = self.config.stride_for(self.max_length)
        ids, owner = chunk_windows(self.tokenizer, texts, self.max_length, stride)
        emb = self._run(id_windows(ids, SORT_WINDOW), len(ids), batch_size, False)
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
        texts = self._apply_prompt(list(texts), prompt_name, None)
        tk = tokenize(self.tokenizer, texts)
        if self.config.long_text != "chunk":
            return Sequences(tk.ids, np.arange(len(texts), dtype=np.int64), None, tk.full_tokens)
        ids, owner = chunk_windows(self.tokenizer, texts, self.max_length, self.config.stride_for(self.max_length))
        specials = len(self.tokenizer.encode("").ids)
        weights = np.fromiter((max(len(x) - specials, 1) for x in ids), dtype=np.float32, count=len(ids))
        return Sequences(ids, owner, weights, tk.full_tokens)

    def embed_batch(self, batch: Batch) -> NDArray[np.float32]:
        """Pooled vectors (B, D) float32 of one padded batch (rows in the batch's order); counted in stats."""
        out = run_batch(self._session, batch, self.manifest["inputs"], ["sentence_embedding"], self.device)[0]
        self.stats.real_tokens += batch.real_tokens
        self.stats.padded_tokens += batch.input_ids.size
        self.stats.batches += 1
        return out

    def join_sequences(self, seqs: Sequences, emb: NDArray[np.float32]) -> NDArray[np.float32]:
        """Per-text vectors (N, D) from per-sequence vectors emb (S, D): chunks averaged by tokens, as encode() does."""
        if seqs.weights is None:
            return emb
        out = aggregate_chunks(emb, seqs.owner, seqs.weights, len(seqs.full_tokens))
        return l2_normalize(out) if self.manifest["normalize"] else out

    def inspect(self, texts: str | list[str]):
        """Hidden states and attentions per text from the introspection graph (see engine.runtime.introspect)."""
        from .introspect import run_inspection

        if self._inspect_session is None:
            self._inspect_session = open_graph(self.model_dir, "inspect.onnx", self.manifest, self.device, self.config.threads)
        texts = [texts] if isinstance(texts, str) else list(texts)
        return run_inspection(self._inspect_session, self.tokenizer, texts, self.manifest["inputs"],
                              self.manifest["pad_token_id"], self.max_length)

    def _stages(self, windows, batch_size: int | None, output: str):
        """(window offset, batch, output) for every padded batch of windows, run on this Embedder's session."""
        plan = BatchPlan(self.max_batch_tokens, batch_size, self.manifest["pad_token_id"], 8 if self.device == "cuda" else 1)
        inputs = self.manifest["inputs"]

        def run(batch):
            return run_batch(self._session, batch, inputs, [output], self.device)[0]
        return run_stages(windows, run, plan, self.stats)

    def _run(self, windows, n: int, batch_size: int | None, progress: bool) -> NDArray[np.float32]:
        """Pooled vectors (n, D) float32 of n sequences, scattered back into input order."""
        bar = progress_bar(n, progress)
        out = scatter(self._stages(windows, batch_size, "sentence_embedding"), n, self.dim, bar.update if bar else None)
        if bar:
            bar.close()
        return out

    def _token_embeddings(self, texts: list[str], batch_size: int | None) -> list[NDArray[np.float32]]:
        """Per-text (t_i, H) token vectors, padding removed."""
        if "token_embeddings" not in self._outputs:
            raise OptionError(f"{self.model_dir} was exported without token embeddings; re-export with --token-embeddings")
        truncated: list[int] = []
        windows = text_windows(self.tokenizer, texts, SORT_WINDOW, truncated)
        result = scatter_tokens(self._stages(windows, batch_size, "token_embeddings"), len(texts))
        self.stats.truncated += sum(truncated)
        return result

    def _apply_prompt(self, texts: list[str], prompt_name: str | None, prompt: str | None) -> list[str]:
        """Prepend a prompt the way sentence-transformers does (explicit prompt, named prompt, or the default)."""
        prompts = self.manifest["prompts"]
        if prompt is None:
            name = prompt_name or self.manifest.get("default_prompt_name")
            if prompt_name and prompt_name not in prompts:
                raise ValueError(f"prompt_name {prompt_name!r} not found; the model defines {sorted(prompts) or 'no prompts'}")
            prompt = prompts.get(name, "") if name else ""
        return [prompt + t for t in texts] if prompt else texts

    def _prompt_named(self, name: str) -> str | None:
        """name if the model defines that prompt, else None."""
        return name if name in self.manifest["prompts"] else None

    def __repr__(self) -> str:
        return (f"Embedder(model_dir={str(self.model_dir)!r}, device={self.device!r}, precision={self.manifest['precision']!r}, "
                f"dim={self.dim}, max_length={self.max_length})")
