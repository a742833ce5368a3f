"""run_embed_job: scan the input, then read -> embed -> write parts, resumable and exactly-once.

Parts are planned from row numbers alone: part k holds input rows [k * rows_per_part, (k + 1) * rows_per_part), so a
rerun plans the same parts, skips those the ledger lists as finished and redoes the rest. Reading (and validating)
runs in a background thread, writing in another; the main thread only embeds. Memory is bounded by a few windows.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from ..runtime import Embedder
from ..runtime.prefetch import prefetch
from .finish import finish_run
from .job import DEFAULT_WINDOW_ROWS, EmbedJob
from .ledger import Ledger
from .output.parts import calibrate_int8, convert, embedding_array
from .output.writer import WriterThread
from .plan import OutputPlan
from .progress import Progress, Summary
from .resume import calibration, finished_summary, open_output, scan_once
from .windows import Window, windows


def window_table(w: Window, emb: NDArray[np.float32], plan: OutputPlan, ranges: NDArray[np.float32] | None,
                 schema: pa.Schema) -> pa.Table:
    """One window's output rows: ids, kept columns, and its embeddings (N, D) float32 in the stored dtype."""
    arrays = [w.ids] + (w.keep.columns if w.keep is not None else []) \
        + [embedding_array(convert(emb, plan.job.dtype, ranges), plan.job.dtype, plan.dim)]
    return pa.Table.from_arrays(arrays, schema=schema)


def run_embed_job(job: EmbedJob, progress: Progress | None = None, embedder: Embedder | None = None) -> Summary:
    """Embed job.input into job.output; resumes an unfinished output with the same fingerprint.

    The model is resolved once (a model folder is exported into the cache on first use); the job's identity comes
    from the export's manifest, so a resume with other options is refused before a session is opened.
    """
    started = time.perf_counter()
    progress = progress or Progress.for_job(job.quiet)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    job, plan, ledger = open_output(job, progress, embedder.manifest if embedder is not None else None)
    try:
        finished = finished_summary(plan, ledger, progress, started)
        if finished is not None:
            return finished
        embedder = embedder or Embedder.from_config(job.embedder)
        timings["model_load"] = time.perf_counter() - t
        if job.window_rows is None:  # not part of the fingerprint: it changes batching, not results
            job = dataclasses.replace(job, window_rows=DEFAULT_WINDOW_ROWS[embedder.device])
            plan = dataclasses.replace(plan, job=job)
        plan, done, timings["scan"] = scan_once(plan, ledger, progress)
        summary = _embed(plan, ledger, embedder, done, progress, timings)
        return finish_run(plan, ledger, summary, progress, started, timings)
    finally:
        ledger.close()


def _embed(plan: OutputPlan, ledger: Ledger, embedder: Embedder, done: set[int], progress: Progress,
           timings: dict[str, float]) -> Summary:
    """Embed the rows of every unfinished part, handing row groups and part commits to the writer thread."""
    job = plan.job
    ranges = calibration(ledger)
    schema = None if job.dtype == "int8" and ranges is None else plan.part_schema(ranges)
    parts_done = ledger.parts()
    summary = Summary(output=plan.sink.label, total_rows=plan.total_rows, parts_resumed=len(done))
    progress.start(plan.total_rows, sum(parts_done[k]["input_rows"] for k in done))
    t = time.perf_counter()
    encode_seconds = 0.0
    writer = WriterThread(plan.sink.open_part, ledger)
    part_stats: dict = {}
    try:
        for w in prefetch(windows(job, plan.files, done, plan.keep_schema, plan.id_type), depth=2):
            st = part_stats.setdefault(w.part, {"rows": 0, "input_rows": 0, "skipped": 0, "emptied": 0, "real_tokens": 0,
                                                "truncated": 0, "started": time.perf_counter()})
            tokens = truncated = 0
            if w.texts:
                before = (embedder.stats.real_tokens, embedder.stats.truncated, embedder.stats.seconds)
                emb = embedder.encode(w.texts)  # (N, D) float32
                tokens = embedder.stats.real_tokens - before[0]
                truncated = embedder.stats.truncated - before[1]
                encode_seconds += embedder.stats.seconds - before[2]
                if schema is None:  # int8: calibrate on the first window embedded, before any part is written
                    ranges = calibrate_int8(emb)
                    ledger.append({"kind": "calibration", "ranges": ranges.tolist(), "rows": len(emb)})
                    schema = plan.part_schema(ranges)
                writer.put(("rows", w.part, (window_table(w, emb, plan, ranges, schema), schema)))
            st["rows"] += len(w.texts)
            st["input_rows"] += w.rows_in
            st["skipped"] += w.skipped
            st["emptied"] += w.emptied
            st["real_tokens"] += tokens
            st["truncated"] += truncated
            summary.rows += len(w.texts)
            summary.real_tokens += tokens
            summary.truncated += truncated
            if w.closes_part:
                st = part_stats.pop(w.part)
                record = {"kind": "part", "part": w.part, "first_row": w.part * job.rows_per_part,
                          "seconds": round(time.perf_counter() - st.pop("started"), 3)} | st
                writer.put(("commit", w.part, record))
            progress.advance(w.rows_in, tokens)
    except BaseException:
        writer.abandon()
        raise
    writer.close()
    timings["embed"] = time.perf_counter() - t
    timings["encode"] = encode_seconds
    return summary
