"""One runner per system, all with the same shape: Runner(cfg).run(texts) -> Result.

Systems:
  hf         the PyTorch reference: transformers AutoModel (eager or SDPA attention), fixed batch size, input order or
             sorted by token length, then mean pooling (+ L2 normalization) written out by hand, as a user would.
  st         sentence-transformers, torch backend (it sorts by character length internally); st_backend "openvino" or
             "onnx" loads its optimum-based backends instead (when optimum / optimum-intel are installed).
  engine     this project's engine.Embedder on an export folder (token-budget batching; backend auto, onnxruntime or
             openvino), or on the model folder itself (backend auto: what the default Embedder() runs).

Every runner times tokenization + model + pooling + copy back to numpy; models load before timing, and
warm_up() runs a few batches first. Real tokens are non-pad tokens after truncation; padded tokens are every token the
model computed (batch rows x padded length).
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class SystemConfig:
    """Everything a runner needs; picklable, so a worker process can build its runner from it."""

    name: str  # label in the report, e.g. "engine fp32"
    kind: str  # "hf", "st" or "engine"
    model: str  # Hugging Face model folder (the source of the export for the engine)
    precision: str = "fp32"  # fp32 | fp16 (GPU) | int8 (engine on CPU)
    device: str = "cpu"  # cpu | cuda
    threads: int = 2
    max_length: int = 256
    attn: str = "sdpa"  # hf: eager | sdpa
    order: str = "input"  # hf: input | sorted (by token length, longest first)
    batch_size: int = 32  # hf / st
    export: str | None = None  # engine: export folder
    max_batch_tokens: int | None = None  # engine; None: the engine's device default (4096 on CPU)
    backend: str = "auto"  # engine: the Embedder's backend option (auto | onnxruntime | openvino)
    st_backend: str = "torch"  # st: SentenceTransformer(backend=...): torch | openvino | onnx
    pooling: str = "mean"
    normalize: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Result:
    """What one timed run measured."""

    texts: int
    real_tokens: int
    padded_tokens: int
    seconds: float
    embeddings: np.ndarray | None = field(default=None, repr=False)
    session_seconds: float | None = None  # engine: time inside onnxruntime's run (the rest is Python around it)
    batches: int | None = None

    @property
    def pad_overhead(self) -> float:
        """Share of computed tokens that were padding."""
        return 1.0 - self.real_tokens / self.padded_tokens if self.padded_tokens else 0.0


def set_threads(threads: int) -> None:
    """Limit every thread pool a runner may touch (call before importing torch / numpy in a fresh process)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


class HFRunner:
    """transformers AutoModel + hand-written mean pooling: the reference a user writes first."""

    def __init__(self, cfg: SystemConfig) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        torch.set_num_threads(cfg.threads)
        self.cfg = cfg
        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(cfg.model)
        dtype = torch.float16 if cfg.precision == "fp16" else torch.float32
        self.model = AutoModel.from_pretrained(cfg.model, attn_implementation=cfg.attn, dtype=dtype).eval().to(cfg.device)

    def _batches(self, texts: list[str]) -> list[list[int]]:
        n, bs = len(texts), self.cfg.batch_size
        order = list(range(n))
        if self.cfg.order == "sorted":
            ids = self.tok(texts, truncation=True, max_length=self.cfg.max_length)["input_ids"]
            order = sorted(order, key=lambda i: -len(ids[i]))
        return [order[i:i + bs] for i in range(0, n, bs)]

    def forward(self, texts: list[str], want: str = "pooled"):
        """One batch: (pooled embeddings (B, D) float32 numpy, real tokens, padded tokens)."""
        torch = self.torch
        enc = self.tok(texts, padding=True, truncation=True, max_length=self.cfg.max_length, return_tensors="pt")
        enc = {k: v.to(self.cfg.device) for k, v in enc.items()}
        hidden = self.model(**enc).last_hidden_state.float()  # pool in fp32: fp16 sums over 512 tokens lose digits
        mask = enc["attention_mask"]
        m = mask.unsqueeze(-1).to(hidden.dtype)
        if self.cfg.pooling == "cls":
            emb = hidden[:, 0]
        else:
            emb = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        if self.cfg.normalize:
            emb = torch.nn.functional.normalize(emb, p=2.0, dim=1)
        return emb.cpu().numpy(), int(mask.sum()), int(mask.numel())

    def run(self, texts: list[str]) -> Result:
        torch = self.torch
        out = np.empty((len(texts), self.model.config.hidden_size), dtype=np.float32)
        real = padded = 0
        _sync(self.cfg.device)
        start = time.perf_counter()
        with torch.inference_mode():
            for rows in self._batches(texts):
                emb, r, p = self.forward([texts[i] for i in rows])
                out[rows] = emb
                real, padded = real + r, padded + p
        _sync(self.cfg.device)
        return Result(len(texts), real, padded, time.perf_counter() - start, out)


class STRunner:
    """sentence-transformers SentenceTransformer.encode, torch backend."""

    def __init__(self, cfg: SystemConfig) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(cfg.threads)
        self.cfg = cfg
        self.model = SentenceTransformer(cfg.model, device=cfg.device, backend=cfg.st_backend)
        if cfg.precision == "fp16":
            self.model.half()
        self.model.max_seq_length = cfg.max_length
        self.tok = self.model.tokenizer

    def padded_tokens(self, texts: list[str]) -> tuple[int, int]:
        """(real, padded) tokens, replayed: encode() sorts by -len(text) in characters, batches, pads to each batch's longest."""
        lengths = np.asarray([len(x) for x in self.tok(texts, truncation=True, max_length=self.cfg.max_length)["input_ids"]])
        order = np.argsort([-len(t) for t in texts], kind="stable")
        padded = sum(len(b) * int(lengths[b].max()) for b in np.array_split(order, range(self.cfg.batch_size, len(texts), self.cfg.batch_size)) if len(b))
        return int(lengths.sum()), int(padded)

    def run(self, texts: list[str]) -> Result:
        _sync(self.cfg.device)
        start = time.perf_counter()
        emb = self.model.encode(texts, batch_size=self.cfg.batch_size, convert_to_numpy=True, show_progress_bar=False,
                                normalize_embeddings=False)
        _sync(self.cfg.device)
        seconds = time.perf_counter() - start
        real, padded = self.padded_tokens(texts)
        return Result(len(texts), real, padded, seconds, np.asarray(emb, dtype=np.float32))


class EngineRunner:
    """engine.Embedder on an export folder; real / padded tokens from its own stats."""

    def __init__(self, cfg: SystemConfig) -> None:
        from engine import Embedder

        self.cfg = cfg
        self.emb = Embedder(cfg.export, device=cfg.device, threads=cfg.threads, max_batch_tokens=cfg.max_batch_tokens,
                            max_length=cfg.max_length, backend=cfg.backend)
        if cfg.device == "cuda" and self.emb.providers[0] != "CUDAExecutionProvider":
            raise RuntimeError(f"engine session runs on {self.emb.providers[0]}, not CUDA: refusing to report GPU numbers")

    @property
    def providers(self) -> list[str]:
        return list(self.emb.providers)

    def run(self, texts: list[str]) -> Result:
        self.emb.reset_stats()
        start = time.perf_counter()
        out = self.emb.encode(texts)
        seconds = time.perf_counter() - start
        s = self.emb.stats
        return Result(len(texts), int(s.real_tokens), int(s.padded_tokens), seconds, out, s.session_seconds, s.batches)


RUNNERS = {"hf": HFRunner, "st": STRunner, "engine": EngineRunner}


def make_runner(cfg: SystemConfig):
    """Build the runner for cfg.kind (loads the model; not timed)."""
    return RUNNERS[cfg.kind](cfg)


def run_system(texts: list[str], cfg: SystemConfig) -> Result:
    """Build, warm up and time one system in this process (the worker pool does this per process)."""
    runner = make_runner(cfg)
    warm_up(runner, texts)
    return runner.run(texts)


def warm_up(runner, texts: list[str], n: int = 64) -> None:
    """A short untimed run over texts of every length (thread pools, allocators, kernels for new shapes)."""
    if not texts:
        return
    step = max(1, len(texts) // n)
    runner.run(list(texts[::step][:n]))


# the packages sentence-transformers' non-torch backends import (it does not depend on them itself)
ST_BACKEND_NEEDS = {"torch": (), "onnx": ("optimum", "onnxruntime"), "openvino": ("optimum", "optimum.intel", "openvino")}


def available(kind: str, st_backend: str = "torch", backend: str = "auto") -> str | None:
    """None when the system can run here, else why not (a missing optional package)."""
    import importlib.util

    need = [{"hf": "transformers", "st": "sentence_transformers", "engine": "onnxruntime"}[kind]]
    if kind == "st":
        need += ST_BACKEND_NEEDS[st_backend]
    if kind == "engine" and backend == "openvino":
        need.append("openvino")
    for name in need:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a parent package (optimum for optimum.intel) is missing
            found = False
        if not found:
            return f"not installed: {name} (sentence-transformers' backend={st_backend!r} needs it)" if kind == "st" and st_backend != "torch" \
                else f"{name} is not installed"
    return None
