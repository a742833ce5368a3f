"""run_embed_job: scan the input, then read -> embed -> write parts, resumable and exactly-once.

Parts are planned from row numbers alone: part k holds input rows [k * rows_per_part, (k + 1) * rows_per_part), so a
rerun plans the same parts, skips those the ledger lists as finished and redoes the rest. Reading (and validating)
runs in a background thread, writing in another; the main thread only embeds. Memory is bounded by a few windows.
"""
from __future__ import annotations

import time

from ..runtime import Embedder
from .embedding import embedded_windows, pending_windows
from .job import EmbedJob
from .jobrun import JobRun
from .output.writer import WriterThread
from .partstats import PartStats
from .progress import Progress, Summary


def run_embed_job(job: EmbedJob, progress: Progress | None = None, embedder: Embedder | None = None) -> Summary:
    """Embed job.input into job.output; resumes an unfinished output with the same fingerprint.

    The model is resolved once (a model folder is exported into the cache on first use); the job's identity comes
    from the export's manifest, so a resume with other options is refused before a backend is opened.
    """
    with JobRun(job, progress, embedder.manifest if embedder is not None else None) as run:
        if run.complete is not None:
            return run.complete
        embedder = embedder or Embedder.from_config(run.job.embedder)
        run.model_loaded()
        run.scan(embedder.device)
        return run.finish(_embed(run, embedder))


def _embed(run: JobRun, embedder: Embedder) -> Summary:
    """Embed the rows of every unfinished part, handing row groups and part commits to the writer thread."""
    summary = run.summary()
    started, encode_before = time.perf_counter(), embedder.stats.seconds
    writer = WriterThread(run.plan.sink.open_part,
                          lambda part, payload, name, size, extra=None: run.record_part(part, *payload, name, size,
                                                                                        **(extra or {})))
    open_parts: dict[int, tuple[PartStats, float]] = {}  # part -> (its counts so far, when it started)
    try:
        for w, table, stats in embedded_windows(pending_windows(run.plan, run.done), embedder, run.plan, run.ranges,
                                                run.calibrate):
            counts, t0 = open_parts.setdefault(w.part, (PartStats(), time.perf_counter()))
            if table is not None:
                writer.put(("rows", w.part, table))
            counts.add(stats)
            summary.count(stats)
            if w.closes_part:
                del open_parts[w.part]
                writer.put(("commit", w.part, (counts, time.perf_counter() - t0)))
            run.progress.advance(w.rows_in, stats.real_tokens)
    except BaseException:
        writer.abandon()
        raise
    writer.close()
    run.timings["embed"] = time.perf_counter() - started
    run.timings["encode"] = embedder.stats.seconds - encode_before
    return summary
