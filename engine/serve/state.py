"""What every route shares: the config, the model, the batcher, the metrics, and whether to take traffic."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from tokenizers import Tokenizer

from ..runtime import Embedder
from .batcher import Batcher
from .config import ServeConfig
from .metrics import Metrics
from .schemas import Limits
from .sequences import Lanes


@dataclass
class ServerState:
    """The server's shared state; routes read it, only run.py and the lifespan change it."""

    cfg: ServeConfig
    embedder: Embedder
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
        return self.embedder.rust_tokenizer


def engine_version() -> str:
    """embedding-engine's installed version (TEI's /info 'version')."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("embedding-engine")
    except PackageNotFoundError:
        return "0+unknown"
