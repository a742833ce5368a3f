"""What every route shares: the config, the model, the batcher, the metrics, and whether to take traffic."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from tokenizers import Tokenizer

from .batcher import Batcher
from .config import ServeConfig
from .errors import WrongTask
from .metrics import Metrics
from .model import Model, task_of
from .schemas import Limits
from .sequences import Lanes


@dataclass
class ServerState:
    """The server's shared state; routes read it, only run.py and the lifespan change it."""

    cfg: ServeConfig
    embedder: Model  # the served model: an Embedder, a Reranker (task 'rerank') or a ServedSparse (task 'sparse')
    batcher: Batcher
    metrics: Metrics
    limits: Limits
    lanes: Lanes = field(default_factory=Lanes)  # the tokenizer threads (small requests, and large ones in turns)
    ready: bool = False  # set once the warm-up batch ran
    draining: bool = False  # set on SIGTERM / SIGINT
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def rust_tokenizer(self) -> Tokenizer:
        """The runtime's own tokenizers.Tokenizer (truncating at max length), for /tokenize and /decode."""
        return self.embedder.tokenizer if self.task == "rerank" else self.embedder.rust_tokenizer

    @property
    def task(self) -> str:
        """'embed' (an Embedder), 'rerank' (a Reranker) or 'sparse' (a SPLADE SparseEncoder)."""
        return task_of(self.embedder)

    def require(self, task: str, route: str) -> None:
        """Refuse a route of another task (WrongTask, 400), naming the model's task, its outputs and the routes it
        serves."""
        if task == self.task:
            return
        raise WrongTask(f"this server serves {self.cfg.model_name!r}, {self._outputs()}, which cannot {ASKS[task]} as "
                        f"{route} asks; {SERVES[self.task]}, or serve {FOR_TASK[task]}", None, "wrong_task")

    def _outputs(self) -> str:
        if self.task == "rerank":
            return "a reranker (task 'rerank': a cross-encoder scoring query-document pairs)"
        if self.task == "sparse":
            return (f"a SPLADE sparse encoder (task 'sparse': one weight per entry of its {self.embedder.vocab_size}-"
                    f"token vocabulary, no dense vector)")
        return f"an embedding model (task 'embed': dense vectors of {self.embedder.dim} dimensions, no sparse weights)"


ASKS = {"embed": "embed text into dense vectors", "rerank": "score query-document pairs",
        "sparse": "give SPLADE sparse vectors (one weight per vocabulary token)"}
SERVES = {"embed": "use POST /v1/embeddings or /embed", "rerank": "use POST /rerank (TEI) or /v1/rerank (Cohere, Jina)",
          "sparse": "use POST /embed_sparse (TEI)"}
FOR_TASK = {"embed": "an embedding model", "rerank": "a cross-encoder (engine serve --model CROSS_ENCODER) for /rerank",
            "sparse": "a SPLADE export (engine export SPLADE_MODEL DIR; task 'sparse') for /embed_sparse"}


def engine_version() -> str:
    """embedding-engine's installed version (TEI's /info 'version')."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("embedding-engine")
    except PackageNotFoundError:
        return "0+unknown"
