"""Ray Data: `engine embed --ray` (run.py) and embed_dataset for Ray pipelines. Ray is imported only when used."""
from __future__ import annotations


def embed_dataset(*args, **kwargs):
    """See engine.ray.embed_dataset.embed_dataset (imported on first use, so `import engine.ray` needs no Ray)."""
    from .embed_dataset import embed_dataset as impl

    return impl(*args, **kwargs)


__all__ = ["embed_dataset"]
