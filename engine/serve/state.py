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
    embedder: Model  # the served model: an Embedder, or a Reranker (task 'rerank')
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
        return self.embedder.rust_tokenizer if self.task == "embed" else self.embedder.tokenizer

    @property
    def task(self) -> str:
        """'embed' (an Embedder) or 'rerank' (a Reranker)."""
        return task_of(self.embedder)

    def require(self, task: str, route: str) -> None:
        """Refuse a route of the other task (WrongTask, 400), naming the model's task and the routes it serves."""
        if task == self.task:
            return
        name = self.cfg.model_name
        if self.task == "rerank":
            raise WrongTask(f"this server serves {name!r}, a reranker (task 'rerank': a cross-encoder scoring query-"
                            f"document pairs), which cannot embed text as {route} asks; use POST /rerank (TEI) or "
                            f"/v1/rerank (Cohere, Jina), or serve an embedding model", None, "wrong_task")
        raise WrongTask(f"this server serves {name!r}, an embedding model (task 'embed'), which cannot score "
                        f"query-document pairs as {route} asks; use POST /v1/embeddings or /embed, or serve a "
                        f"cross-encoder (engine serve --model CROSS_ENCODER) for /rerank", None, "wrong_task")


def engine_version() -> str:
    """embedding-engine's installed version (TEI's /info 'version')."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("embedding-engine")
    except PackageNotFoundError:
        return "0+unknown"
