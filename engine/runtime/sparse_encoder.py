"""SparseEncoder: a SPLADE export encoding texts to sparse vocabulary vectors, a drop-in for sentence-transformers'
SparseEncoder (encode, encode_query, encode_document, max_active_dims, decode, similarity: the same argument names,
order, defaults and values; its output types per engine.runtime.sparse_outputs).

The pipeline is the Embedder's: tokenize -> token-budget batches in length order, prepared in a thread -> backend.run
on sparse.onnx -> the "sparse" head ((indices, values) per text, top max_active_dims) -> input order. An inference-free
model's queries skip the graph: each distinct token of the query gets its weight from query_weights.npy.
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from export.manifest import model_task
from export.options import SPLADE_POOLING

from ..config import DEFAULT_MAX_BATCH_TOKENS, EmbedderConfig, config_from_options
from ..errors import ConfigError, ModelFolderError
from .backends import choose_backend, open_backend
from .batching import Batch, text_windows
from .checks import check_batch_size, check_device, check_folder_task, check_task, progress_bar, texts_argument
from .heads import HEADS, Head, SparseRow, collect, sparse_row, sparse_rows
from .models import load_export, open_export, openvino_cache
from .prompts import apply_prompt, initial_prompts, prompt_named
from .similarity import similarity, similarity_pairwise
from .sparse_outputs import as_dense, decode_rows, sparse_answer
from .st_outputs import Device, as_st_tensor, similarity_name
from .stages import BatchPlan, EncodeStats, run_stages
from .tokenize import check_texts, configure_tokenizer, load_tokenizer

SORT_WINDOW = 8192  # texts sorted together; bounds memory while keeping padding low
LOGITS_BYTES = 1 << 28  # the (tokens, V) float32 MLM logits of one batch stay under this by default (max_batch_tokens)


class SparseEncoder:
    """Encode texts to SPLADE sparse vectors with an exported sparse encoder (drop-in for sentence-transformers'
    SparseEncoder).

    SparseEncoder(model, max_active_dims=None, similarity_fn_name=None, prompts=None, default_prompt_name=None,
    **options): options are EmbedderConfig's fields (device, backend, precision, max_length, threads,
    max_batch_tokens, cache_dir, ...). model: an export folder of task 'sparse', a sentence-transformers SparseEncoder
    folder or a *ForMaskedLM folder (exported on first use; the latter as SPLADE max pooling, as SparseEncoder loads it).
    """

    def __init__(self, model: str | Path | None = None, *, max_active_dims: int | None = None,
                 similarity_fn_name=None, prompts: dict | None = None, default_prompt_name: str | None = None,
                 **options) -> None:
        cfg = config_from_options({"model": str(model) if model is not None else None, **options}, "SparseEncoder")
        if cfg.normalize is not None or cfg.pooling not in (None, SPLADE_POOLING):
            raise ConfigError("pooling and normalize shape dense embeddings; a sparse encoder pools with SPLADE (max or "
                              "sum, as its export says): leave them out")
        if cfg.long_text == "chunk":
            raise ConfigError("long_text='chunk' is not supported by SparseEncoder; texts are truncated at max_length")
        cfg = dataclasses.replace(cfg, pooling=cfg.pooling or _first_use_pooling(cfg.model))
        check_folder_task(cfg.model, "sparse", cfg.pooling)
        folder, loaded = open_export(cfg, functools.partial(_load, cfg))
        self._attach(cfg, folder, *loaded)
        self.max_active_dims = max_active_dims if max_active_dims is not None else self.manifest.get("max_active_dims")
        self.similarity_fn_name = similarity_fn_name or self.manifest.get("similarity_fn_name") or "dot"
        self.prompts = initial_prompts(self.manifest.get("prompts") or {}, prompts)
        self.default_prompt_name = default_prompt_name if default_prompt_name is not None else self.manifest.get("default_prompt_name")

    def _attach(self, cfg: EmbedderConfig, folder: Path, manifest: dict, tokenizer: Tokenizer, backend, choice) -> None:
        self.config, self.model_dir, self.manifest, self.backend, self.backend_choice = cfg, folder, manifest, backend, choice
        self.max_length = cfg.max_length or manifest["max_length"]
        self.vocab_size = int(manifest["vocab_size"])
        self._tokenizer = configure_tokenizer(tokenizer, self.max_length)
        self._device = Device(backend.device)
        self.providers = backend.providers
        default = DEFAULT_MAX_BATCH_TOKENS[self.device]
        self.max_batch_tokens = cfg.max_batch_tokens or max(256, min(default, LOGITS_BYTES // (4 * self.vocab_size)))
        self.stats = EncodeStats()
        self.query_kind = manifest.get("query", {}).get("kind", "document")
        self._query_weights = self._query_tokenizer = None
        if self.query_kind == "static":
            self._query_weights, self._query_tokenizer = _static_query(folder, manifest)

    # -- state ------------------------------------------------------------------------------------------------------
    @property
    def max_active_dims(self) -> int | None:
        """The most non-zero dimensions encode keeps per text (None: all); encode's own argument overrides it."""
        return self._max_active_dims

    @max_active_dims.setter
    def max_active_dims(self, value) -> None:
        self._max_active_dims = _check_active_dims(value)

    @property
    def similarity_fn_name(self) -> str:
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value) -> None:
        self._similarity_fn_name = similarity_name(value)

    device = property(lambda self: self._device, doc="Where it runs: 'cpu' or 'cuda' (with torch.device's .type).")
    max_seq_length = property(lambda self: self.max_length, doc="Tokens per text; longer texts are truncated.")
    tokenizer = property(lambda self: self._tokenizer, doc="The runtime's tokenizers.Tokenizer.")

    def get_embedding_dimension(self) -> int:
        """The vocabulary size: every sparse vector has one dimension per vocabulary entry."""
        return self.vocab_size

    get_sentence_embedding_dimension = get_embedding_dimension

    def reset_stats(self) -> None:
        self.stats = EncodeStats()

    # -- sentence-transformers' SparseEncoder API -----------------------------------------------------------------
    def encode(self, inputs=None, prompt_name: str | None = None, prompt: str | None = None, batch_size: int = 32,
               show_progress_bar: bool | None = None, convert_to_tensor: bool = True, convert_to_sparse_tensor: bool = True,
               save_to_cpu: bool = False, device=None, max_active_dims: int | None = None, pool=None,
               chunk_size: int | None = None, *, sentences=None, task: str | None = None, **kwargs):
        """Sparse vectors of texts, SparseEncoder.encode's names, order, defaults and values: a sparse (N, V) tensor
        (a single text: its (V,) row), dense with convert_to_sparse_tensor=False, a list with convert_to_tensor=False.
        task: 'query' or 'document' (None: the document side, a Router's default route)."""
        if kwargs:
            raise ValueError(f"SparseEncoder.encode() has been called with additional keyword arguments that this model "
                             f"does not use: {sorted(kwargs)}")
        inputs = texts_argument(inputs, sentences)
        check_batch_size(batch_size)
        for name, value in (("convert_to_tensor", convert_to_tensor), ("convert_to_sparse_tensor", convert_to_sparse_tensor),
                            ("save_to_cpu", save_to_cpu)):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
        if task not in (None, "query", "document"):
            raise ValueError(f"task {task!r} must be 'query', 'document' or None (the document side)")
        check_device(self.device, device)
        if pool is not None or chunk_size is not None:
            raise ValueError("pool and chunk_size (multi-process encoding) are not needed: one SparseEncoder already "
                             "uses every core; call encode(texts) without them")
        single = isinstance(inputs, str)
        texts = [inputs] if single else list(inputs)
        check_texts(texts)
        texts = apply_prompt(self.prompts, self.default_prompt_name, texts, prompt_name, prompt)
        rows = self._encode_prompted(texts, task == "query", max_active_dims, batch_size, bool(show_progress_bar))
        return sparse_answer(rows, self.vocab_size, single, bool(convert_to_tensor), bool(convert_to_sparse_tensor))

    def encode_query(self, inputs=None, prompt_name: str | None = None, prompt: str | None = None, batch_size: int = 32,
                     show_progress_bar: bool | None = None, convert_to_tensor: bool = True,
                     convert_to_sparse_tensor: bool = True, save_to_cpu: bool = False, device=None,
                     max_active_dims: int | None = None, pool=None, chunk_size: int | None = None, **kwargs):
        """encode with the 'query' prompt (when the model has one) and the query side (task 'query')."""
        if prompt_name is None and prompt is None:
            prompt_name = prompt_named(self.prompts, "query")
        return self.encode(inputs, prompt_name, prompt, batch_size, show_progress_bar, convert_to_tensor,
                           convert_to_sparse_tensor, save_to_cpu, device, max_active_dims, pool, chunk_size,
                           task="query", **kwargs)

    def encode_document(self, inputs=None, prompt_name: str | None = None, prompt: str | None = None,
                        batch_size: int = 32, show_progress_bar: bool | None = None, convert_to_tensor: bool = True,
                        convert_to_sparse_tensor: bool = True, save_to_cpu: bool = False, device=None,
                        max_active_dims: int | None = None, pool=None, chunk_size: int | None = None, **kwargs):
        """encode with the 'document' (or 'passage', 'corpus') prompt and the document side (task 'document')."""
        if prompt_name is None and prompt is None:
            prompt_name = prompt_named(self.prompts, "document", "passage", "corpus")
        return self.encode(inputs, prompt_name, prompt, batch_size, show_progress_bar, convert_to_tensor,
                           convert_to_sparse_tensor, save_to_cpu, device, max_active_dims, pool, chunk_size,
                           task="document", **kwargs)

    def decode(self, embeddings, top_k: int | None = None):
        """(token, weight) pairs by descending weight per vector (the top_k first; None: all non-zero), as
        SparseEncoder.decode; reads every form encode returns and encode_sparse's rows."""
        return decode_rows(embeddings, self.vocab_size, top_k, self._tokenizer.id_to_token)

    def similarity(self, embeddings1, embeddings2):
        """(N, M) scores by similarity_fn_name ('dot' by default), as SparseEncoder.similarity (torch when importable)."""
        a, b = as_dense(embeddings1, self.vocab_size)[0], as_dense(embeddings2, self.vocab_size)[0]
        return as_st_tensor(similarity(a, b, self.similarity_fn_name))

    def similarity_pairwise(self, embeddings1, embeddings2):
        """(N,) score of each pair of rows, as SparseEncoder.similarity_pairwise (torch when importable)."""
        a, b = as_dense(embeddings1, self.vocab_size)[0], as_dense(embeddings2, self.vocab_size)[0]
        return as_st_tensor(similarity_pairwise(a, b, self.similarity_fn_name))

    # -- the low-level API (engine.serve, the bulk writer, the Qdrant sink) -----------------------------------------
    def encode_sparse(self, texts: list[str], *, query: bool = False, max_active_dims: int | None = None,
                      batch_size: int | None = None) -> list[SparseRow]:
        """Per text, in input order, (indices int32 ascending, values float32 non-zero) of its sparse vector, as
        encode_query (query=True) or encode_document would give it: their prompt, their side, the top max_active_dims
        (None: the model's max_active_dims)."""
        texts = list(texts)
        check_texts(texts)
        check_batch_size(batch_size)
        name = prompt_named(self.prompts, "query") if query else prompt_named(self.prompts, "document", "passage", "corpus")
        texts = apply_prompt(self.prompts, self.default_prompt_name, texts, name, None)
        return self._encode_prompted(texts, query, max_active_dims, batch_size, False)

    # -- the pipeline --------------------------------------------------------------------------------------------
    def _encode_prompted(self, texts: list[str], query: bool, max_active_dims, batch_size, progress: bool) -> list[SparseRow]:
        k = _check_active_dims(max_active_dims) if max_active_dims is not None else self.max_active_dims
        self.stats.texts += len(texts)
        if query and self.query_kind == "static":
            return [self._static_row(t, k) for t in texts]
        plan = BatchPlan(self.max_batch_tokens, batch_size, self.pad_id, 8 if self.device == "cuda" else 1)
        truncated: list[int] = []
        bar = progress_bar(len(texts), progress)
        results = run_stages(text_windows(self._tokenizer, texts, SORT_WINDOW, truncated), self._run, plan, self.stats)
        head = Head("sparse", True, functools.partial(sparse_rows, max_active_dims=k))
        rows = collect(results, len(texts), head, (), bar.update if bar else None)
        if bar:
            bar.close()
        self.stats.truncated += sum(truncated)
        return rows

    def _run(self, batch: Batch) -> np.ndarray:
        name = self.manifest["head_outputs"]["sparse"]
        return self.backend.run(batch, [name])[name]  # (B, V) float32

    def _static_row(self, text: str, k: int | None) -> SparseRow:
        """An inference-free query: its distinct tokens (no special tokens), each weighted by query_weights."""
        ids = np.unique(np.asarray(self._query_tokenizer.encode(text, add_special_tokens=False).ids, dtype=np.int64))
        row = np.zeros(self.vocab_size, dtype=np.float32)
        row[ids] = self._query_weights[ids]
        return sparse_row(row, k)

    @property
    def pad_id(self) -> int:
        return int(self.manifest["pad_token_id"])

    def sparse_batch(self, batch: Batch, max_active_dims: int | None = None) -> list[SparseRow]:
        """One padded batch of token ids -> its rows' (indices, values), in batch order; counted in stats."""
        out = self._run(batch)
        self.stats.real_tokens += batch.real_tokens
        self.stats.padded_tokens += batch.input_ids.size
        self.stats.batches += 1
        k = _check_active_dims(max_active_dims) if max_active_dims is not None else self.max_active_dims
        return HEADS["sparse"].post(batch, out) if k is None else sparse_rows(batch, out, k)

    def __repr__(self) -> str:
        return (f"SparseEncoder({str(self.model_dir)!r}, vocab_size={self.vocab_size}, query={self.query_kind!r}, "
                f"max_active_dims={self.max_active_dims}, max_length={self.max_length}, device={str(self.device)!r}, "
                f"backend={self.backend_choice.name!r})")


def _load(cfg: EmbedderConfig, folder: Path) -> tuple:
    """(manifest, tokenizer, backend, choice) of a sparse export folder, checked against cfg."""
    manifest = load_export(folder)
    check_task(manifest, folder, "sparse")
    if cfg.precision is not None and cfg.precision != manifest["precision"]:
        raise ConfigError(f"{folder} was exported with precision={manifest['precision']!r} but precision="
                          f"{cfg.precision!r} was asked; re-export it, or pass the model folder")
    if cfg.max_length and cfg.max_length > manifest["max_length"]:
        raise ConfigError(f"max_length {cfg.max_length} exceeds the export's {manifest['max_length']}; re-export with --max-length")
    tokenizer = load_tokenizer(folder, cfg.max_length or manifest["max_length"])
    choice = choose_backend(cfg.backend, cfg.device, manifest["precision"])
    backend = open_backend(folder, model_task(manifest)[1], manifest, cfg.device, cfg.threads, choice, openvino_cache(cfg))
    return manifest, tokenizer, backend, choice


def _static_query(folder: Path, manifest: dict) -> tuple[np.ndarray, Tokenizer]:
    """(query weights (V,) float32, the query tokenizer: no padding, truncation at the query side's max_length)."""
    query = manifest["query"]
    path = folder / query.get("weights", "query_weights.npy")
    try:
        weights = np.load(path, allow_pickle=False).astype(np.float32)
    except (OSError, ValueError) as err:
        raise ModelFolderError(f"{path} cannot be read ({err}); re-export the model with 'engine export MODEL {folder} --overwrite'") from err
    if weights.shape != (int(manifest["vocab_size"]),):
        raise ModelFolderError(f"{path} holds shape {weights.shape}, not ({manifest['vocab_size']},); re-export the model")
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=int(query.get("max_length") or manifest["max_length"]))
    return weights, tok


def _first_use_pooling(model: str | None) -> str | None:
    """'splade' for a bare *ForMaskedLM model folder (sentence-transformers' SparseEncoder loads one as SPLADE max
    pooling), so its first-use export is a sparse one; None for anything else (its layout or manifest decides)."""
    from export.manifest import MANIFEST
    from export.sparse_folder import is_masked_lm, is_sparse_encoder

    from .models import engine_errors

    path = Path(str(model)).expanduser() if model is not None else None
    if path is None or not (path / "config.json").is_file() or (path / MANIFEST).is_file():
        return None
    with engine_errors():
        return SPLADE_POOLING if is_masked_lm(path) and not is_sparse_encoder(path) else None


def _check_active_dims(value) -> int | None:
    """max_active_dims: None (all) or a positive integer."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ConfigError(f"max_active_dims must be a positive integer (the most non-zero dimensions kept per text) "
                          f"or None (all), got {value!r}")
    return int(value)
