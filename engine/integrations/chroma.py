"""Chroma: EngineEmbeddingFunction, a chromadb EmbeddingFunction backed by an Embedder.

Registered under the name "embedding-engine", with get_config / build_from_config, so a persisted collection is
reopened with the same model and options by get_collection() alone (import this module first). Queries get the
model's query prompt, documents its document prompt.
"""
from __future__ import annotations

from typing import Any

from ..config import config_from_options
from ..extras import require
from ..runtime import Embedder
from .shared import adapter_embedder, check_text_list, config_dict, shared_embedder

_types = require("chromadb.api.types", "chroma", "engine.integrations.chroma")
_registry = require("chromadb.utils.embedding_functions", "chroma", "engine.integrations.chroma")

NAME = "embedding-engine"
WHAT = "EngineEmbeddingFunction"  # bad input raises ValueError, as Chroma's own checks do
CONFIG_WHAT = f"the Embedder arguments of an {NAME} config"


@_registry.register_embedding_function
class EngineEmbeddingFunction(_types.EmbeddingFunction[_types.Documents]):
    """Chroma embedding function from an Embedder, or from Embedder(...)'s arguments (one model per process).

    truncate_dim keeps the first dimensions (Matryoshka models); normalize=True always returns unit vectors.
    """

    def __init__(self, embedder: Embedder | None = None, *, truncate_dim: int | None = None, **options: Any) -> None:
        """options: Embedder(...)'s keyword arguments, EmbedderConfig's fields (model=, device=, precision=, ...)."""
        self.embedder, self.encoding = adapter_embedder(embedder, options, truncate_dim, type(self).__qualname__)

    def __call__(self, input: _types.Documents) -> _types.Embeddings:
        """Document vectors, one float32 array per document."""
        return list(self.encoding.documents(self.embedder, check_text_list(input, WHAT, ValueError)))

    def embed_query(self, input: _types.Documents) -> _types.Embeddings:
        """Query vectors, one float32 array per query text."""
        return list(self.encoding.queries(self.embedder, check_text_list(input, WHAT, ValueError)))

    @staticmethod
    def name() -> str:
        return NAME

    def default_space(self) -> _types.Space:
        return "cosine"

    def supported_spaces(self) -> list[_types.Space]:
        unit = self.encoding.normalize or (self.encoding.normalize is None and self.embedder.manifest["normalize"])
        return ["cosine", "l2", "ip"] if unit else ["cosine", "l2"]

    def get_config(self) -> dict[str, Any]:
        """JSON-ready: the Embedder's arguments (the model as its export folder) and the adapter's own options."""
        return {"embedder": config_dict(self.embedder), "truncate_dim": self.encoding.truncate_dim,
                "normalize": self.encoding.normalize}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "EngineEmbeddingFunction":
        """The function get_config() described (sharing the loaded model when this process already has it)."""
        EngineEmbeddingFunction.validate_config(config)
        embedder = shared_embedder(None, config_from_options(config["embedder"], CONFIG_WHAT))
        return EngineEmbeddingFunction(embedder, truncate_dim=config.get("truncate_dim"), normalize=config.get("normalize"))

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        if not isinstance(config, dict) or not isinstance(config.get("embedder"), dict):
            raise ValueError(f"an {NAME} config holds an 'embedder' dict of Embedder arguments, got {config!r}")
        config_from_options(config["embedder"], CONFIG_WHAT)  # ConfigError (a ValueError) naming an unknown key

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        old = (old_config.get("embedder", {}).get("model"), old_config.get("truncate_dim"))
        new = (new_config.get("embedder", {}).get("model"), new_config.get("truncate_dim"))
        if old != new:
            raise ValueError(f"a collection's vectors come from one model and width: {old} cannot become {new}; "
                             "create a new collection for the new model")
