"""run_job: scan the input, then read -> embed (or score) -> write parts, resumable and exactly-once.

Parts are planned from row numbers alone: part k holds input rows [k * rows_per_part, (k + 1) * rows_per_part), so a
rerun plans the same parts, skips those the ledger lists as finished and redoes the rest. Reading (and validating)
runs in a background thread, writing in another; the main thread only runs the model. Memory is bounded by a few
windows. The job's task chooses the model and the per-window step (step.py): an Embedder and an EmbedStep for
`engine embed`, a Reranker and a ScoreStep for `engine score`; everything else is the same run.
"""
from __future__ import annotations

import time

from ..runtime import Embedder, Reranker, SparseEncoder
from .embedding import EmbedStep, pending_windows
from .job import EmbedJob
from .jobrun import JobRun
from .output.writer import WriterThread
from .partstats import PartStats
from .progress import Progress, Summary
from .scoring import ScoreStep
from .sparse import HybridStep, SparseStep, load_sparse_encoder, sparse_config
from .step import Step, stepped_windows


def run_job(job: EmbedJob, progress: Progress | None = None,
            model: Embedder | Reranker | SparseEncoder | None = None) -> Summary:
    """Embed (task "embed", plus a sparse column with job.sparse_model; task "sparse" for a SPLADE model) or score
    (task "rerank") job.input into job.output; resumes an unfinished output with the same fingerprint.

    The model is resolved once (a model folder is exported into the cache on first use); the job's identity comes
    from the export's manifest, so a resume with other options is refused before a backend is opened.
    """
    with JobRun(job, progress, model.manifest if model is not None else None) as run:
        if run.complete is not None:
            return run.complete
        model = model or _load(run.job)
        run.model_loaded()
        run.scan(model.device)
        return run.finish(_run(run, _step(run, model)))


def run_embed_job(job: EmbedJob, progress: Progress | None = None, embedder: Embedder | None = None) -> Summary:
    """run_job under its older name (engine embed's callers)."""
    return run_job(job, progress, embedder)


def _load(job: EmbedJob) -> Embedder | Reranker | SparseEncoder:
    """The job's model, from its (resolved) export folder."""
    if job.task == "sparse":
        return load_sparse_encoder(job.embedder)
    return (Reranker if job.task == "rerank" else Embedder).from_config(job.embedder)


def _step(run: JobRun, model: Embedder | Reranker | SparseEncoder) -> Step:
    """The job's per-window step: scores for task "rerank", sparse vectors for task "sparse", embeddings otherwise
    (and, with --sparse-model, sparse vectors next to them)."""
    if run.job.task == "rerank":
        return ScoreStep(model, run.plan)
    if run.job.task == "sparse":
        return SparseStep(model, run.plan)
    if run.job.sparse_model is not None:
        encoder = load_sparse_encoder(sparse_config(run.job))
        return HybridStep(model, encoder, run.plan, run.ranges, run.calibrate)
    return EmbedStep(model, run.plan, run.ranges, run.calibrate)


def _run(run: JobRun, step: Step) -> Summary:
    """Run the step over the rows of every unfinished part, handing row groups and part commits to the writer thread."""
    summary = run.summary()
    started, encode_before = time.perf_counter(), step.model.stats.seconds
    writer = WriterThread(run.plan.sink.open_part,
                          lambda part, payload, name, size, extra=None: run.record_part(part, *payload, name, size,
                                                                                        **(extra or {})))
    open_parts: dict[int, tuple[PartStats, float]] = {}  # part -> (its counts so far, when it started)
    try:
        for w, table, stats in stepped_windows(pending_windows(run.plan, run.done), step):
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
    run.timings["encode"] = step.model.stats.seconds - encode_before
    return summary
