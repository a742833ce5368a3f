"""LanceDB: EngineEmbeddings, registered in LanceDB's embedding registry as "embedding-engine".

    func = get_registry().get("embedding-engine").create(model=...)   # or create(embedder=an_Embedder)

works in a LanceModel schema with func.SourceField() / func.VectorField(): LanceDB embeds the source column on add()
and the query text on search(). The arguments are saved in the table's metadata, so reopening the table rebuilds the
same function (sharing the loaded model when this process already has it). Queries get the model's query prompt.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..config import FIELD_NAMES, FIELD_TYPES, EmbedderConfig, check_option_names
from ..extras import require
from ..runtime import Embedder
from .shared import Encoding, adapter_embedder, config_dict, shared_embedder

_lancedb = require("lancedb.embeddings", "lancedb", "engine.integrations.lancedb")
_pydantic = require("pydantic", "lancedb", "engine.integrations.lancedb")

NAME = "embedding-engine"
WHAT = f"LanceDB {NAME!r}"

# Embedder(...)'s arguments as pydantic fields, one per EmbedderConfig field (its type, default and CLI help): LanceDB
# saves them in the table's metadata and passes them back to create(...) when the table is reopened.
_EmbedderOptions = _pydantic.create_model(
    "_EmbedderOptions", __base__=_lancedb.TextEmbeddingFunction, __module__=__name__,
    **{f.name: (FIELD_TYPES[f.name], _pydantic.Field(default=f.default, description=f.metadata.get("help")))
       for f in dataclasses.fields(EmbedderConfig)})


@_lancedb.register(NAME)
class EngineEmbeddings(_EmbedderOptions):
    """Embedder(...)'s arguments as fields (EmbedderConfig's, derived from it), plus truncate_dim (Matryoshka) and
    normalize (True: unit vectors)."""

    truncate_dim: int | None = None
    max_retries: int = 0  # a local model has nothing to retry; errors surface as they are
    _embedder: Embedder = _pydantic.PrivateAttr()
    _encoding: Encoding = _pydantic.PrivateAttr()

    @classmethod
    def create(cls, **kwargs: Any) -> "EngineEmbeddings":
        """create(model=..., ...) like Embedder(...), or create(embedder=an_Embedder, truncate_dim=..., normalize=...).

        An Embedder is saved in the table's metadata as the arguments that rebuild it (its export folder).
        """
        cls._check_names(set(kwargs) - {"embedder"})
        embedder = kwargs.pop("embedder", None)
        if embedder is not None:
            given = set(kwargs) - {"truncate_dim", "normalize"}
            if given:
                raise TypeError(f"pass either an Embedder or Embedder(...) arguments, not both (got {sorted(given)})")
            shared_embedder(embedder, None)  # registered: rebuilding from the saved arguments finds it
            Encoding(kwargs.get("truncate_dim"), kwargs.get("normalize")).check(embedder)
            args = config_dict(embedder)
            args.pop("normalize")
            kwargs = args | kwargs
        return super().create(**kwargs)

    def __init__(self, **data: Any) -> None:
        self._check_names(data)
        super().__init__(**data)
        options = {name: getattr(self, name) for name in FIELD_NAMES}
        self._embedder, self._encoding = adapter_embedder(None, options, self.truncate_dim, WHAT)
        self._ndims = self._encoding.dim(self._embedder)

    @classmethod
    def _check_names(cls, names) -> None:
        """The shared ConfigError for a name that is no field (pydantic would drop it silently)."""
        check_option_names(set(names) - set(cls.model_fields), WHAT)

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    def ndims(self) -> int:
        return self._ndims

    def generate_embeddings(self, texts) -> list[np.ndarray | None]:
        """Document vectors; a null text gets None (the table's on_bad_vectors policy decides what happens to it)."""
        return self._embed(_text_list(texts, "generate_embeddings(texts)"), self._encoding.documents)

    def compute_query_embeddings(self, query, *args, **kwargs) -> list[np.ndarray | None]:
        """The query's vector, with the model's query prompt; a query that is no string is a TypeError naming it."""
        queries = _text_list(self.sanitize_input(query), "compute_query_embeddings(query)", single="a query string")
        for i, q in enumerate(queries):
            if not isinstance(q, str):
                raise TypeError(f"{NAME}: compute_query_embeddings(query): query[{i}] is {type(q).__name__}, not str; "
                                "every query must be a string")
        return self._embed(queries, self._encoding.queries)

    def compute_source_embeddings_with_retry(self, *args, **kwargs):
        return self.compute_source_embeddings(*args, **kwargs) if not self.max_retries else \
            super().compute_source_embeddings_with_retry(*args, **kwargs)

    def compute_query_embeddings_with_retry(self, *args, **kwargs):
        return self.compute_query_embeddings(*args, **kwargs) if not self.max_retries else \
            super().compute_query_embeddings_with_retry(*args, **kwargs)

    def _embed(self, texts: list, encode) -> list[np.ndarray | None]:
        for i, t in enumerate(texts):
            if t is not None and not isinstance(t, str):
                raise TypeError(f"{NAME}: text {i} is {type(t).__name__}, not str; the source column must hold strings")
        present = [i for i, t in enumerate(texts) if t is not None]
        out: list[np.ndarray | None] = [None] * len(texts)
        if present:
            for i, v in zip(present, encode(self._embedder, [texts[i] for i in present])):
                out[i] = v
        return out


def _text_list(texts, call: str, single: str | None = None) -> list:
    """texts (a list, tuple or other iterable of texts) as a list; anything else a TypeError naming call's argument."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Iterable):
        takes = f"{single} or a list of strings" if single else "a list of strings"
        raise TypeError(f"{NAME}: {call} takes {takes}, got {type(texts).__name__}")
    return list(texts)
