"""Ray Data: `engine embed --ray` (run.py) and embed_dataset for Ray pipelines. Ray itself is imported only when used
(`import engine.ray` needs no Ray)."""
from __future__ import annotations

# Imported here, not on first call: importing the submodule of the same name later would rebind
# engine.ray.embed_dataset to the module, and a second call would fail with "'module' object is not callable".
from .embed_dataset import embed_dataset

__all__ = ["embed_dataset"]
