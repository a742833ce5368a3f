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

from ..config import DEFAULT_MAX_BATCH_TOKENS, EmbedderConfig, config_from_options
from ..errors import ConfigError
from .backend import Backend
from .backends import BackendChoice, choose_backend, open_backend
from .batching import Batch, id_windows, text_windows
from .checks import check_against_manifest, check_folder_task, check_batch_size, check_encode_options, progress_bar, texts_argument
from .dropin import SentenceTransformerAPI
from .heads import HEADS, collect
from .models import load_export, open_export, openvino_cache
from .postprocess import aggregate_chunks, l2_normalize, quantize
from .prompts import apply_prompt, check_requested_prompt
from .st_outputs import Device, all_outputs, empty_answer, sentence_answer
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


class Embedder(SentenceTransformerAPI):
    """Encode texts with an exported model (drop-in for SentenceTransformer; see engine.runtime.dropin).

    Embedder(model, **options): options are EmbedderConfig's fields (device, precision, max_length, ...). The
    keyword arguments similarity_fn_name, truncate_dim, prompts and default_prompt_name are SentenceTransformer's
    constructor arguments: object state (settable attributes too), over the export's saved metadata.
    """

    def __init__(self, model: str | Path | None = None, *, similarity_fn_name=None, truncate_dim: int | None = None,
                 prompts: dict[str, str] | None = None, default_prompt_name: str | None = None, **options) -> None:
        cfg = config_from_options({"model": str(model) if model is not None else None, **options}, "Embedder")
        self._setup(cfg, dict(similarity_fn_name=similarity_fn_name, truncate_dim=truncate_dim, prompts=prompts,
                              default_prompt_name=default_prompt_name))

    @classmethod
    def from_config(cls, cfg: EmbedderConfig, **st_args) -> "Embedder":
        """Build from a frozen EmbedderConfig (what the CLI and pipelines use); st_args: similarity_fn_name,
        truncate_dim, prompts, default_prompt_name, as in Embedder(...)."""
        self = cls.__new__(cls)
        self._setup(cfg, st_args)
        return self

    @classmethod
    def from_backend(cls, backend: Backend, tokenizer: Tokenizer, manifest: dict, cfg: EmbedderConfig | None = None,
                     model_dir: str | Path | None = None, **st_args) -> "Embedder":
        """An Embedder over a backend that is already open (a fake one in tests, or one a caller built itself);
        manifest describes the model as an export's manifest.json does; st_args as in from_config."""
        self = cls.__new__(cls)
        choice = BackendChoice(type(backend).__name__, manifest.get("precision", "fp32"), "Embedder.from_backend")
        self._attach(cfg or EmbedderConfig(), Path(model_dir or "."), manifest, tokenizer, backend, choice)
        self._st_state(st_args, False, Path(model_dir) if model_dir is not None else None)
        return self

    def _setup(self, cfg: EmbedderConfig, st_args: dict) -> None:
        check_folder_task(cfg.model, "embed", cfg.pooling)

        def load(folder: Path) -> tuple:
            manifest = load_export(folder)
            check_against_manifest(cfg, manifest, folder)
            max_length = cfg.max_length or manifest["max_length"]
            tokenizer = load_tokenizer(folder, max_length)
            check_chunking(tokenizer, max_length, cfg.stride_for(max_length))
            choice = choose_backend(cfg.backend, cfg.device, manifest["precision"])
            backend = open_backend(folder, "embed.onnx", manifest, cfg.device, cfg.threads, choice, openvino_cache(cfg))
            return manifest, tokenizer, backend, choice

        # a cached export that fails to load is rebuilt
        folder, (manifest, tokenizer, backend, choice) = open_export(cfg, load)
        self._attach(cfg, folder, manifest, tokenizer, backend, choice)
        self._st_state(st_args, cfg.model, folder)

    def _st_state(self, st_args: dict, model_arg, tokenizer_config_dir: Path | None) -> None:
        unknown = set(st_args) - {"similarity_fn_name", "truncate_dim", "prompts", "default_prompt_name"}
        if unknown:
            raise TypeError(f"unexpected keyword arguments {sorted(unknown)}")
        self._init_st_state(st_args.get("similarity_fn_name"), st_args.get("truncate_dim"), st_args.get("prompts"),
                            st_args.get("default_prompt_name"), model_arg, tokenizer_config_dir)

    def _attach(self, cfg: EmbedderConfig, folder: Path, manifest: dict, tokenizer: Tokenizer, backend: Backend,
                choice: BackendChoice) -> None:
        self.config, self.model_dir, self.manifest, self.backend = cfg, folder, manifest, backend
        self.backend_choice = choice  # which backend runs the export at which precision, and why
        self.max_length = cfg.max_length or manifest["max_length"]
        self.dim = int(manifest["embedding_dim"])
        self._tokenizer = configure_tokenizer(tokenizer, self.max_length)  # the runtime's own (rust_tokenizer)
        self.input_kind, self.heads = model_io(manifest)  # "text" or "pair"; head name -> embed.onnx output
        self._device = Device(backend.device)
        self.providers = backend.providers
        self.max_batch_tokens = cfg.max_batch_tokens or DEFAULT_MAX_BATCH_TOKENS[self.device]
        self._inspect_backend = None
        self.stats = EncodeStats()

    def reset_stats(self) -> None:
        """Zero the cumulative counters."""
        self.stats = EncodeStats()

    def encode(self, inputs: str | list[str] | None = None, prompt_name: str | None = None, prompt: str | None = None,
               batch_size: int | None = None, show_progress_bar: bool | None = None,
               output_value: str | None = "sentence_embedding", precision: str = "float32", convert_to_numpy: bool = True,
               convert_to_tensor: bool = False, device: str | None = None, normalize_embeddings: bool = False,
               truncate_dim: int | None = None, pool: None = None, chunk_size: int | None = None, *,
               sentences: str | list[str] | None = None):
        """Embed texts: (N, D) float32 (1-D for a single string), SentenceTransformer.encode's names, order, semantics
        and answers (convert_to_tensor: a torch tensor, numpy when torch is not importable; output_value=None: a dict
        per text; [] in: what sentence-transformers gives for []).

        batch_size caps rows per batch (the token budget packs batches either way); device must be None or this
        Embedder's own; pool (multi-process encoding) is not needed and must be None; chunk_size only sizes a pool's
        chunks. sentences= is the name sentence-transformers used before version 6.
        """
        texts_in = texts_argument(inputs, sentences)
        single = isinstance(texts_in, str)
        texts = [texts_in] if single else list(texts_in)
        check_texts(texts)
        check_encode_options(self, precision, output_value, device, pool, truncate_dim, batch_size, prompt, prompt_name,
                             chunk_size, show_progress_bar=show_progress_bar, convert_to_numpy=convert_to_numpy,
                             convert_to_tensor=convert_to_tensor, normalize_embeddings=normalize_embeddings)
        truncate_dim = self.truncate_dim if truncate_dim is None else truncate_dim
        texts = apply_prompt(self.prompts, self.default_prompt_name, texts, prompt_name, prompt)
        if not texts:
            return empty_answer(output_value, convert_to_numpy, convert_to_tensor)
        self.stats.texts += len(texts)
        if output_value == "token_embeddings":  # sentence-transformers neither normalizes nor truncates these
            tokens = quantize(self._encode_texts(texts, "tokens", batch_size, False), precision)
            return tokens[0] if single else tokens
        emb = self._sentence_embeddings(texts, batch_size, bool(show_progress_bar))
        if truncate_dim:  # Matryoshka: truncate, then normalize (as sentence-transformers does)
            emb = emb[:, :truncate_dim]
        if output_value is None:
            ids = tokenize(self._tokenizer, texts).ids
            out = all_outputs(ids, self._encode_texts(texts, "tokens", batch_size, False), emb,
                              "token_type_ids" in self.manifest.get("inputs", ()))
            return out[0] if single else out
        if normalize_embeddings:
            emb = l2_normalize(emb)
        return sentence_answer(quantize(emb, precision), single, convert_to_numpy, convert_to_tensor)

    def _sentence_embeddings(self, texts: list[str], batch_size: int | None, progress: bool) -> NDArray[np.float32]:
        """(N, D) pooled vectors of prompted texts: truncated at max_length, or chunked and averaged (long_text)."""
        if self.config.long_text != "chunk":
            return self._encode_texts(texts, "pooled", batch_size, progress)
        chunks = self.encode_chunks(texts, batch_size=batch_size, _prompted=True)
        emb = aggregate_chunks(chunks.embeddings, chunks.text_index, chunks.tokens.astype(np.float32), len(texts))
        return l2_normalize(emb) if self.manifest["normalize"] else emb

    def encode_chunks(self, sentences: list[str], batch_size: int | None = None, _prompted: bool = False) -> ChunkEmbeddings:
        """Split each text into max_length token windows (overlapping by chunk_stride) and embed every window."""
        texts = list(sentences)
        check_texts(texts)
        check_batch_size(batch_size)
        if not _prompted:
            texts = apply_prompt(self.prompts, self.default_prompt_name, texts, None, None)
        stride = self.config.stride_for(self.max_length)
        ids, owner = chunk_windows(self._tokenizer, texts, self.max_length, stride)
        emb = self._collect(id_windows(ids, SORT_WINDOW), len(ids), "pooled", batch_size, False)
        if not _prompted:  # encode() counts its own texts
            self.stats.texts += len(texts)
        specials = len(self._tokenizer.encode("").ids)
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
        """Tokenize texts as encode() does (prompt, then truncation or chunk windows per long_text); run nothing.
        prompt_name must be one the model defines (not one of sentence-transformers' empty placeholders), as TEI's."""
        check_texts(texts)
        check_requested_prompt(prompt_name, self.prompts, self._placeholders)
        texts = apply_prompt(self.prompts, self.default_prompt_name, list(texts), prompt_name, None)
        tk = tokenize(self._tokenizer, texts)
        if self.config.long_text != "chunk":
            return Sequences(tk.ids, np.arange(len(texts), dtype=np.int64), None, tk.full_tokens)
        ids, owner = chunk_windows(self._tokenizer, texts, self.max_length, self.config.stride_for(self.max_length))
        specials = len(self._tokenizer.encode("").ids)
        weights = np.fromiter((max(len(x) - specials, 1) for x in ids), dtype=np.float32, count=len(ids))
        return Sequences(ids, owner, weights, tk.full_tokens)

    def embed_batch(self, batch: Batch, head: str = "pooled"):
        """One padded batch through a head, rows in the batch's order: pooled vectors (B, D) float32, or for "tokens"
        one (t, H) array per row; counted in stats."""
        out = self._head_output(batch, head)
        self.stats.real_tokens += batch.real_tokens
        self.stats.padded_tokens += batch.input_ids.size
        self.stats.batches += 1
        return HEADS[head].post(batch, out)

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
            # the inspect graph is validated at fp32 whatever the export's precision
            choice = choose_backend(self.config.backend, self.device, "fp32")
            self._inspect_backend = open_backend(self.model_dir, "inspect.onnx", self.manifest, self.device,
                                                 self.config.threads, choice, openvino_cache(self.config))
        texts = [texts] if isinstance(texts, str) else list(texts)
        return run_inspection(self._inspect_backend, self._tokenizer, texts, self.manifest["pad_token_id"], self.max_length)

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
        result = self._collect(text_windows(self._tokenizer, texts, SORT_WINDOW, truncated), len(texts), head,
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
        return (f"Embedder(model_dir={str(self.model_dir)!r}, device={self.device!r}, backend={self.backend_choice.name!r}, "
                f"precision={self.manifest['precision']!r}, "
                f"dim={self.dim}, max_length={self.max_length})")


HEAD_EXPORT_FLAG = {"tokens": " --token-embeddings"}  # the export option that adds a head, for the missing-head message
