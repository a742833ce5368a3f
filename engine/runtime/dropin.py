"""sentence-transformers' object surface on Embedder, beyond encode's pipeline.

Its state (prompts, default_prompt_name, similarity_fn_name, truncate_dim, max_seq_length), its helpers
(similarity, truncate_embeddings, tokenize, tokenizer, device, encode_query / encode_document), and, for each method
an ONNX export cannot honour (moving devices, half, save, multi-process pools, model[0]), an UnsupportedError that
names what to use instead: every name here behaves as SentenceTransformer's, or raises. Embedder mixes it in.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from ..errors import ConfigError, UnsupportedError
from .prompts import PLACEHOLDERS, check_default_prompt_name, check_prompts, initial_prompts, prompt_named
from .similarity import SIMILARITY_FUNCTIONS, similarity, similarity_pairwise
from .st_encoding import load_tokenizer_config
from .st_outputs import Device, as_st_tensor, optional_torch, similarity_name
from .st_tokenizer import FastTokenizerView

POOL_FIX = ("multi-process encoding is not needed: one Embedder already runs every CPU core (threads=...) or its GPU; "
            "call encode(texts) directly, and for several GPUs run one Embedder per GPU (CUDA_VISIBLE_DEVICES)")
HALF_FIX = ("the graph's precision is chosen when the model is exported: Embedder(MODEL, device='cuda', "
            "precision='fp16') on a GPU, or precision='int8' on CPU")
NO_MODULES = ("an Embedder has no PyTorch modules: the export is one ONNX graph with pooling and normalization "
              "inside; for model[0].tokenizer use emb.tokenizer, for model[0].max_seq_length emb.max_seq_length, and "
              "emb.manifest says how the model pools and normalizes")


class SentenceTransformerAPI:
    """SentenceTransformer's attributes and methods other than encode (mixed into Embedder, which holds the state)."""

    def _init_st_state(self, similarity_fn_name, truncate_dim, prompts, default_prompt_name, model_arg,
                       tokenizer_config_dir: Path | None) -> None:
        """Start the sentence-transformers state as SentenceTransformer(...) does: given arguments win over the
        export's saved metadata. model_arg: the model the Embedder was asked for (None: the bundled one; False:
        unknown, an Embedder over a backend built in code)."""
        saved = self.manifest
        self._prompts = initial_prompts(saved.get("prompts") or {}, prompts)
        self._placeholders = {n for n in PLACEHOLDERS if n not in (saved.get("prompts") or {}) and n not in (prompts or {})}
        self.default_prompt_name = default_prompt_name if default_prompt_name is not None else saved.get("default_prompt_name")
        saved_fn = saved.get("similarity_fn_name")
        self.similarity_fn_name = similarity_fn_name if similarity_fn_name is not None else (
            saved_fn if saved_fn in SIMILARITY_FUNCTIONS else None)
        self.truncate_dim = truncate_dim if truncate_dim is not None else saved.get("truncate_dim")
        self._model_arg, self._tokenizer_config_dir, self._tokenizer_view = model_arg, tokenizer_config_dir, None

    # -- state ------------------------------------------------------------------------------------------------------
    @property
    def prompts(self) -> dict[str, str]:
        """Prompt name -> text, as model.prompts: assign a new dict or edit this one; encode reads it every call."""
        return self._prompts

    @prompts.setter
    def prompts(self, value: dict) -> None:
        check_prompts(value)
        self._prompts, self._placeholders = value, set()

    @property
    def default_prompt_name(self) -> str | None:
        """The prompt encode applies when given neither prompt nor prompt_name (None: no prompt)."""
        return self._default_prompt_name

    @default_prompt_name.setter
    def default_prompt_name(self, value: str | None) -> None:
        check_default_prompt_name(value, self._prompts)
        self._default_prompt_name = value

    @property
    def similarity_fn_name(self) -> str:
        """'cosine', 'dot', 'euclidean' or 'manhattan': what similarity() computes; set a name or a SimilarityFunction."""
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value) -> None:
        self._similarity_fn_name = similarity_name(value)

    @property
    def truncate_dim(self) -> int | None:
        """Matryoshka width encode truncates sentence embeddings to when its own truncate_dim is None."""
        return self._truncate_dim

    @truncate_dim.setter
    def truncate_dim(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= self.dim):
            raise ConfigError(f"truncate_dim must be an integer in 1..{self.dim} (the model's width) or None, got {value!r}")
        self._truncate_dim = value

    @property
    def max_seq_length(self) -> int:
        """Tokens per text (sentence-transformers' name for max_length); settable up to the export's max_length."""
        return self.max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        limit = self.manifest["max_length"]
        if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= limit:
            fix = f"; for {value} tokens, create the Embedder with {self._longer_fix(value)}" if (
                isinstance(value, int) and not isinstance(value, bool) and value > limit) else ""
            raise ConfigError(f"max_seq_length must be an integer in 2..{limit} (the export's max_length), got {value!r}{fix}")
        self.max_length = value
        self._tokenizer.enable_truncation(max_length=value)

    def _longer_fix(self, value: int) -> str:
        """The constructor call that gives value tokens per text: the model exported again at that max_length."""
        model, source = self._model_arg, (self.manifest.get("source") or {}).get("model")
        if model is None:
            return f"Embedder(max_length={value})"
        if model is not False and Path(str(model)).expanduser().resolve() != Path(self.model_dir).resolve():
            return f"Embedder({str(model)!r}, max_length={value})"
        if source:
            return (f"Embedder({source!r}, max_length={value}), the model this export was made from (an export folder "
                    "keeps the max_length it was exported with)")
        return f"Embedder(MODEL_FOLDER, max_length={value}) on the model folder (an export keeps its max_length)"

    def get_max_seq_length(self) -> int:
        return self.max_seq_length

    def get_embedding_dimension(self) -> int:
        """Width of encode's sentence embeddings (truncate_dim when set), sentence-transformers' name since 6.2."""
        return min(self.dim, self.truncate_dim) if self.truncate_dim else self.dim

    def get_sentence_embedding_dimension(self) -> int:
        """get_embedding_dimension's name before sentence-transformers 6.2."""
        return self.get_embedding_dimension()

    @property
    def device(self) -> Device:
        """Where the graph runs ('cpu' or 'cuda', after any fallback): a str with torch.device's .type and .index."""
        return self._device

    @device.setter
    def device(self, value) -> None:
        raise UnsupportedError(f"an Embedder's device is chosen when it is created: Embedder(..., device={str(value)!r})")

    @property
    def tokenizer(self) -> FastTokenizerView:
        """The tokenizer as sentence-transformers exposes it (a transformers fast tokenizer's methods); the runtime's
        own Rust tokenizer is rust_tokenizer."""
        if self._tokenizer_view is None:
            self._tokenizer_view = FastTokenizerView(
                self, self._tokenizer, load_tokenizer_config(self._tokenizer_config_dir), self.manifest.get("inputs", ()),
                self.manifest.get("padding_side", "right"), str(self._model_arg or self.model_dir))
        return self._tokenizer_view

    @tokenizer.setter
    def tokenizer(self, value) -> None:
        raise UnsupportedError("an Embedder's tokenizer is the export's tokenizer.json, which its graph was exported "
                               "with; export the model with the other tokenizer saved in its folder (engine export)")

    @property
    def rust_tokenizer(self):
        """The runtime's own tokenizers.Tokenizer (truncation at max_length, no padding): read it, don't reconfigure it."""
        return self._tokenizer

    # -- helpers that work as in sentence-transformers ---------------------------------------------------------------
    def similarity(self, embeddings1, embeddings2):
        """(N, M) scores by similarity_fn_name, as SentenceTransformer.similarity: a torch tensor when torch is
        importable, else a numpy array."""
        return as_st_tensor(similarity(embeddings1, embeddings2, self.similarity_fn_name))

    def similarity_pairwise(self, embeddings1, embeddings2):
        """(N,) score of each pair of rows, as SentenceTransformer.similarity_pairwise (torch when importable)."""
        return as_st_tensor(similarity_pairwise(embeddings1, embeddings2, self.similarity_fn_name))

    @contextmanager
    def truncate_embeddings(self, truncate_dim: int | None):
        """Inside the block, encode truncates sentence embeddings to truncate_dim (None: no truncation)."""
        before = self.truncate_dim
        self.truncate_dim = truncate_dim
        try:
            yield
        finally:
            self._truncate_dim = before

    truncate_sentence_embeddings = truncate_embeddings  # the name before sentence-transformers 6.2

    def encode_query(self, inputs=None, prompt_name: str | None = None, prompt: str | None = None, *args, **kwargs):
        """encode with the 'query' prompt unless a prompt or prompt_name is given, as sentence-transformers does."""
        if prompt_name is None and prompt is None and "query" in self.prompts:
            prompt_name = "query"
        return self.encode(inputs, prompt_name, prompt, *args, **kwargs)

    def encode_document(self, inputs=None, prompt_name: str | None = None, prompt: str | None = None, *args, **kwargs):
        """encode with the first of the 'document', 'passage', 'corpus' prompts, as sentence-transformers does."""
        if prompt_name is None and prompt is None:
            prompt_name = prompt_named(self.prompts, "document", "passage", "corpus")
        return self.encode(inputs, prompt_name, prompt, *args, **kwargs)

    def tokenize(self, texts, prompt: str | None = None) -> dict:
        """sentence-transformers' tokenize (preprocess): padded input_ids, token_type_ids and attention_mask of texts
        or (text, text) pairs, truncated at max_seq_length; torch tensors when torch is importable, else numpy."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        pairs = bool(texts) and all(isinstance(t, (tuple, list)) and len(t) == 2 for t in texts)
        first, second = ([p[0] for p in texts], [p[1] for p in texts]) if pairs else (texts, None)
        if prompt:
            first = [prompt + t for t in first]
        out = dict(self.tokenizer(first, second, padding=True, truncation="longest_first",
                                  return_tensors="pt" if optional_torch() is not None else "np"))
        return out | {"modality": "text"}

    def eval(self):
        """The graph is inference-only already: returns the Embedder, as model.eval() returns the model."""
        return self

    def to(self, *args, **kwargs):
        """Staying on the device it runs on (or float32 on a fp32 export) returns the Embedder; anything else raises."""
        for target in (*args, *(kwargs[k] for k in ("device", "dtype") if k in kwargs)):
            name = str(target)
            if name.startswith("torch."):  # a dtype
                if name == "torch.float32" and self.manifest["precision"] == "fp32":
                    continue
                raise UnsupportedError(f"to({name}): {HALF_FIX}")
            kind, _, index = name.partition(":")
            if kind != self.device.type or index not in ("", "0"):
                raise UnsupportedError(f"this Embedder runs on {str(self.device)!r} and cannot move; create one there: "
                                       f"Embedder(..., device={kind!r})")
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else f"cuda:{device}" if isinstance(device, int) else device)

    def half(self):
        raise UnsupportedError(f"half(): {HALF_FIX}")

    def train(self, mode: bool = True):
        if not mode:
            return self
        raise UnsupportedError("an Embedder runs an inference graph and cannot train; fine-tune with "
                               "sentence-transformers, save the model, then 'engine export FOLDER OUT'")

    def save(self, path, *args, **kwargs):
        raise UnsupportedError(f"an Embedder holds an ONNX export, not a sentence-transformers model; its export folder "
                               f"{str(self.model_dir)!r} is complete on its own: shutil.copytree(emb.model_dir, "
                               f"{str(path)!r}) and Embedder({str(path)!r}) loads the copy")

    save_pretrained = save

    def start_multi_process_pool(self, target_devices=None):
        raise UnsupportedError(f"start_multi_process_pool: {POOL_FIX}")

    @staticmethod
    def stop_multi_process_pool(pool=None):
        raise UnsupportedError(f"stop_multi_process_pool: {POOL_FIX}")

    def encode_multi_process(self, sentences=None, pool=None, *args, **kwargs):
        raise UnsupportedError(f"encode_multi_process: {POOL_FIX}")

    def __getitem__(self, index):
        raise UnsupportedError(f"model[{index!r}]: {NO_MODULES}")
