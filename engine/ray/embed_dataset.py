"""embed_dataset: add an `embedding` column to a Ray Dataset, for pipelines that already run on Ray Data."""
from __future__ import annotations

import dataclasses
import warnings

from ..bulk.job import BAD_ROW_POLICIES, DEFAULT_WINDOW_ROWS
from ..config import EmbedderConfig, check_option_names
from ..errors import ConfigError
from ..runtime.models import resolve_export
from .actor import EmbedBatches
from .cluster import MAX_UNIT_RETRIES, check_actors_fit, import_ray
from .columns import check_columns

DTYPES = ("float32", "float16", "ubinary")  # int8 needs ranges calibrated over the whole job: use engine embed --ray


def embed_dataset(ds, model: str | None = None, *, text_column: str = "text", id_column: str | None = None,
                  dtype: str = "float32", on_bad_row: str = "error", batch_size: int | None = None,
                  concurrency: int | tuple[int, int] = 1, num_cpus: float = 1.0, num_gpus: float = 0.0,
                  **runtime):
    """ds with an `embedding` column of engine embed's Arrow type (fixed_size_list<float32>[dim] by default).

    model: as for Embedder (None: the bundled all-MiniLM-L6-v2; a model folder is exported once, on the driver, into
    the cache, which the workers must see). runtime: EmbedderConfig's fields (device, max_batch_tokens, threads, ...),
    checked here, on the driver. Each of `concurrency` actors (an int, or (min, max) to autoscale) loads one Embedder
    with num_cpus threads (unless threads is given) on num_cpus CPUs and num_gpus GPUs. on_bad_row: a null, empty or
    non-string text raises ('error', naming the id_column value), drops the row ('skip') or is embedded as '' ('empty').
    Lazy, as every Ray Data transform: nothing runs until the dataset is consumed. Your DataContext is left as it
    is (engine embed --ray also sets actor_task_retry_on_errors and execution_no_progress_timeout_s).
    """
    ray = import_ray("engine.ray.embed_dataset")
    check_option_names(runtime, "embed_dataset")
    if dtype not in DTYPES:
        raise ConfigError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)} (int8 needs ranges calibrated over the "
                          "whole input: use engine embed --ray)")
    if on_bad_row not in BAD_ROW_POLICIES:
        raise ConfigError(f"on_bad_row {on_bad_row!r} is not one of {', '.join(BAD_ROW_POLICIES)}")
    check_columns(ds.schema(fetch_if_missing=False), text_column, id_column)
    if ray.is_initialized():  # else Ray starts when the dataset is consumed, with this machine's resources
        check_actors_fit(ray, num_cpus, num_gpus, names=("num_cpus", "num_gpus"))
    cfg = EmbedderConfig(model=model, **runtime)
    folder = resolve_export(cfg).resolve()
    cfg = dataclasses.replace(cfg, model=str(folder))
    with warnings.catch_warnings():  # max_task_retries has no named parameter yet (Ray 2.60): bounded, not the default -1
        warnings.simplefilter("ignore", DeprecationWarning)
        return ds.map_batches(EmbedBatches, batch_format="pyarrow", concurrency=concurrency, num_cpus=num_cpus,
                              num_gpus=num_gpus or None, max_task_retries=MAX_UNIT_RETRIES,
                              batch_size=batch_size or DEFAULT_WINDOW_ROWS["cuda" if num_gpus else "cpu"],
                              fn_constructor_kwargs={"cfg": cfg, "text_column": text_column, "id_column": id_column,
                                                     "dtype": dtype, "on_bad_row": on_bad_row, "cpus": num_cpus})

