"""`engine embed` / `engine score`: a corpus (parquet / jsonl / csv / txt) -> a resumable, exactly-once parquet
dataset of embeddings (or of text-pair scores)."""
from .job import EmbedJob
from .progress import Progress, Summary
from .run import run_embed_job, run_job

__all__ = ["EmbedJob", "Progress", "Summary", "run_embed_job", "run_job"]
