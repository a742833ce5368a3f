"""Reranker: a cross-encoder export scoring (query, document) pairs, a drop-in for sentence-transformers' CrossEncoder
(predict, rank: the same argument names, order and values).

The pipeline is the Embedder's: tokenize pairs (with segment ids) -> token-budget batches in length order, prepared in
a thread -> backend.run on score.onnx -> the "score" head -> input order; then the model's activation, as
CrossEncoder.predict applies it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from export.manifest import model_task

from ..config import DEFAULT_MAX_BATCH_TOKENS, EmbedderConfig, config_from_options
from ..errors import ConfigError
from .backend import Backend
from .backends import BackendChoice, choose_backend, open_backend
from .batching import Batch
from .checks import check_batch_size, check_folder_task, check_task, progress_bar
from .heads import HEADS, collect
from .models import load_export, open_export, openvino_cache
from .pairs import PairSequences, check_pair_list, check_query_documents, join_max, pair_sequences
from .scores import activate, scores_answer
from .st_outputs import Device
from .stages import BatchPlan, EncodeStats, run_stages
from .tokenize import configure_tokenizer, load_tokenizer

SORT_WINDOW = 8192  # pairs sorted together; bounds memory while keeping padding low
# Options that shape an embedding, not a score: refused for a reranker rather than ignored.
_EMBED_ONLY = ("pooling", "normalize")


class Reranker:
    """Score text pairs with an exported cross-encoder (drop-in for sentence-transformers' CrossEncoder).

    Reranker(model, **options): options are EmbedderConfig's fields (device, backend, precision, max_length, threads,
    max_batch_tokens, long_text, chunk_stride, cache_dir, ...); long_text="chunk" scores each window of a long
    document with the whole query and keeps the best. activation_fn: CrossEncoder's argument (a callable on a torch
    tensor, or on a numpy array when torch is not importable), over the export's own activation.
    """

    def __init__(self, model: str | Path | None = None, *, activation_fn=None, **options) -> None:
        cfg = config_from_options({"model": str(model) if model is not None else None, **options}, "Reranker")
        self._setup(cfg)
        self.activation_fn = activation_fn

    @classmethod
    def from_config(cls, cfg: EmbedderConfig, activation_fn=None) -> "Reranker":
        self = cls.__new__(cls)
        self._setup(cfg)
        self.activation_fn = activation_fn
        return self

    @classmethod
    def from_backend(cls, backend: Backend, tokenizer: Tokenizer, manifest: dict, cfg: EmbedderConfig | None = None,
                     model_dir: str | Path | None = None) -> "Reranker":
        """A Reranker over a backend that is already open (a fake one in tests); manifest as an export's."""
        self = cls.__new__(cls)
        choice = BackendChoice(type(backend).__name__, manifest.get("precision", "fp32"), "Reranker.from_backend")
        self._attach(cfg or EmbedderConfig(), Path(model_dir or "."), manifest, tokenizer, backend, choice)
        self.activation_fn = None
        return self

    def _setup(self, cfg: EmbedderConfig) -> None:
        for name in _EMBED_ONLY:
            if getattr(cfg, name) is not None:
                raise ConfigError(f"{name} shapes embeddings; a reranker scores text pairs and has none: leave it out")
        check_folder_task(cfg.model, "rerank")

        def load(folder: Path) -> tuple:
            manifest = load_export(folder)
            check_task(manifest, folder, "rerank")
            if cfg.precision is not None and cfg.precision != manifest["precision"]:
                raise ConfigError(f"{folder} was exported with precision={manifest['precision']!r} but "
                                  f"precision={cfg.precision!r} was asked; re-export it, or pass the model folder")
            if cfg.max_length and cfg.max_length > manifest["max_length"]:
                raise ConfigError(f"max_length {cfg.max_length} exceeds the export's {manifest['max_length']}; "
                                  "re-export with --max-length")
            max_length = cfg.max_length or manifest["max_length"]
            tokenizer = load_tokenizer(folder, max_length)
            choice = choose_backend(cfg.backend, cfg.device, manifest["precision"])
            graph = model_task(manifest)[1]
            backend = open_backend(folder, graph, manifest, cfg.device, cfg.threads, choice, openvino_cache(cfg))
            return manifest, tokenizer, backend, choice

        folder, (manifest, tokenizer, backend, choice) = open_export(cfg, load)
        self._attach(cfg, folder, manifest, tokenizer, backend, choice)

    def _attach(self, cfg: EmbedderConfig, folder: Path, manifest: dict, tokenizer: Tokenizer, backend: Backend,
                choice: BackendChoice) -> None:
        self.config, self.model_dir, self.manifest, self.backend = cfg, folder, manifest, backend
        self.backend_choice = choice
        self.max_length = cfg.max_length or manifest["max_length"]
        self.num_labels = int(manifest.get("num_labels", 1))
        self.activation = manifest.get("activation", "sigmoid" if self.num_labels == 1 else "identity")
        self._tokenizer = configure_tokenizer(tokenizer, self.max_length)
        self._device = Device(backend.device)
        self.providers = backend.providers
        self.max_batch_tokens = cfg.max_batch_tokens or DEFAULT_MAX_BATCH_TOKENS[self.device]
        self.stats = EncodeStats()
        self._stride = self._chunk_stride()

    def _chunk_stride(self) -> int | None:
        """Tokens neighbouring document windows share with long_text 'chunk' (None: pairs are truncated)."""
        stride = self.config.stride_for(self.max_length)
        if stride is not None and not 0 <= stride < self.max_length // 2:
            raise ConfigError(f"chunk_stride {stride} must be in 0..{self.max_length // 2 - 1} for a reranker at "
                              f"max_length {self.max_length} (each window also holds the query); pass a smaller one")
        return stride

    @property
    def device(self) -> Device:
        return self._device

    @property
    def max_seq_length(self) -> int:
        return self.max_length

    @property
    def tokenizer(self) -> Tokenizer:
        return self._tokenizer

    def reset_stats(self) -> None:
        self.stats = EncodeStats()

    # -- sentence-transformers' CrossEncoder API ------------------------------------------------------------------
    def predict(self, inputs=None, batch_size: int = 32, show_progress_bar: bool | None = None, activation_fn=None,
                apply_softmax: bool | None = False, convert_to_numpy: bool = True, convert_to_tensor: bool = False,
                *, sentences=None):
        """Scores of (text, text) pairs: (N,) for one label, (N, num_labels) for more (a single pair in: its score),
        CrossEncoder.predict's names, order, defaults and values. batch_size caps pairs per batch (the token budget
        packs batches either way). sentences= is the name sentence-transformers used before version 4."""
        if inputs is not None and sentences is not None:
            raise TypeError("pass the pairs once, as inputs= (or the older name sentences=), not both")
        inputs = inputs if inputs is not None else sentences
        if inputs is None:
            raise TypeError("predict() needs the pairs: predict([(query, document), ...])")
        single = _is_single_pair(inputs)
        pairs = check_pair_list([inputs] if single else inputs)
        check_batch_size(batch_size)
        for name, value in (("convert_to_numpy", convert_to_numpy), ("convert_to_tensor", convert_to_tensor)):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
        logits = self.score_pairs(pairs, batch_size, bool(show_progress_bar))
        scores = activate(logits, activation_fn or self.activation_fn or self.activation, bool(apply_softmax))
        return scores_answer(scores, single, convert_to_numpy, convert_to_tensor)

    def rank(self, query: str, documents: list[str], top_k: int | None = None, return_documents: bool = False,
             batch_size: int = 32, show_progress_bar: bool | None = None, activation_fn=None) -> list[dict]:
        """Documents sorted by score for query: [{"corpus_id", "score"(, "text")}], the top_k first (None: all), as
        CrossEncoder.rank."""
        if self.num_labels != 1:
            raise ValueError(f"rank() only works for models with num_labels=1 (this one has {self.num_labels}); use "
                             "predict() with input pairs instead")
        documents = check_query_documents(query, documents)
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
            raise ValueError(f"top_k must be None (all documents) or an integer >= 1, got {top_k!r}")
        scores = self.predict([(query, d) for d in documents], batch_size=batch_size, show_progress_bar=show_progress_bar,
                              activation_fn=activation_fn, convert_to_tensor=False, convert_to_numpy=True)
        results = [{"corpus_id": i, "score": float(s)} | ({"text": documents[i]} if return_documents else {})
                   for i, s in enumerate(np.asarray(scores, dtype=np.float64).reshape(-1))]
        results.sort(key=lambda r: r["score"], reverse=True)
        return results[:top_k]

    # -- the pipeline --------------------------------------------------------------------------------------------
    def score_pairs(self, pairs: list[tuple[str, str]], batch_size: int | None = None,
                    progress: bool = False) -> NDArray[np.float32]:
        """Raw logits (N, num_labels) float32 of checked pairs, in input order (long documents per long_text)."""
        self.stats.texts += len(pairs)
        seqs = self.pair_sequences(pairs)
        self.stats.truncated += seqs.truncated
        plan = BatchPlan(self.max_batch_tokens, batch_size, self.pad_id, self.pad_multiple)
        windows = ((s, seqs.ids[s:s + SORT_WINDOW], seqs.type_ids[s:s + SORT_WINDOW])
                   for s in range(0, len(seqs.ids), SORT_WINDOW))
        bar = progress_bar(len(seqs.ids), progress)
        results = run_stages(windows, self._run, plan, self.stats)
        logits = collect(results, len(seqs.ids), HEADS["score"], (self.num_labels,), bar.update if bar else None)
        if bar:
            bar.close()
        return self.join_scores(seqs, logits)

    def _run(self, batch: Batch) -> np.ndarray:
        name = self.manifest["head_outputs"]["score"]
        return self.backend.run(batch, [name])[name]

    # -- hooks for callers that schedule batches themselves (engine.serve) ------------------------------------------
    @property
    def pad_id(self) -> int:
        return int(self.manifest["pad_token_id"])

    @property
    def pad_multiple(self) -> int:
        return 8 if self.device == "cuda" else 1

    def pair_sequences(self, pairs: list[tuple[str, str]]) -> PairSequences:
        """Tokenize checked pairs as predict() does (truncation, or document windows with long_text 'chunk')."""
        return pair_sequences(self._tokenizer, pairs, self.max_length, self._stride)

    def score_batch(self, batch: Batch) -> NDArray[np.float32]:
        """One padded batch of pair sequences -> raw logits (B, num_labels) float32; counted in stats."""
        out = self._run(batch)
        self.stats.real_tokens += batch.real_tokens
        self.stats.padded_tokens += batch.input_ids.size
        self.stats.batches += 1
        return HEADS["score"].post(batch, out)

    def join_scores(self, seqs: PairSequences, logits: NDArray[np.float32]) -> NDArray[np.float32]:
        """Per-pair logits (N, L) from per-sequence logits (S, L): the best window of a chunked pair."""
        return join_max(logits, seqs.owner, len(seqs.full_tokens)) if seqs.chunked else logits

    def activate(self, logits: NDArray[np.float32], raw: bool = False, apply_softmax: bool = False) -> NDArray[np.float32]:
        """Scores as predict() gives them ((N,) for one label); raw: the logits themselves."""
        return activate(logits, "identity" if raw else self.activation, apply_softmax)

    def __repr__(self) -> str:
        return (f"Reranker({str(self.model_dir)!r}, num_labels={self.num_labels}, activation={self.activation!r}, "
                f"max_length={self.max_length}, device={str(self.device)!r}, backend={self.backend_choice.name!r})")


def _is_single_pair(inputs) -> bool:
    """CrossEncoder.is_singular_input: a list or tuple whose first item is not a list or tuple is one pair."""
    if isinstance(inputs, (list, tuple)):
        return len(inputs) > 0 and not isinstance(inputs[0], (list, tuple))
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in ("U", "O"):
        return inputs.size > 0 and inputs.ndim < 2
    return isinstance(inputs, str)
