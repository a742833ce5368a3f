"""JobRun: one run of an embed job over its output, the same for both executors (the local runner and Ray).

It holds what a run shares from opening the output to writing _SUCCESS: the job, its plan, the locked ledger, the
progress display and the timings. The executors only embed: they ask it for the windows left, record each finished
part through it, and let it finish.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
from numpy.typing import NDArray

from .finish import finish_run
from .job import DEFAULT_WINDOW_ROWS, EmbedJob
from .output.folder import clean_stale
from .output.parts import calibrate_int8
from .partstats import PartStats, part_record
from .progress import Progress, Summary
from .resume import calibration, finished_summary, open_output, rows_per_file, scan_once


class JobRun:
    """Open with `with JobRun(job, progress) as run:`; the ledger (the output's lock) and the sink are released on exit.

    complete: the summary of an output that was already complete (nothing to do), else None.
    """

    def __init__(self, job: EmbedJob, progress: Progress | None = None, manifest: dict | None = None,
                 started: float | None = None) -> None:
        self.started = started if started is not None else time.perf_counter()  # the wall time counts from here
        self.progress = progress or Progress.for_job(job.quiet)
        self.timings: dict[str, float] = {}
        self.job, self.plan, self.ledger = open_output(job, self.progress, manifest)
        try:
            self.complete: Summary | None = finished_summary(self.plan, self.ledger, self.progress, self.started)
        except BaseException:
            self.close()
            raise
        self.done: set[int] = set()  # parts finished by earlier runs (after scan())

    def __enter__(self) -> "JobRun":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the ledger (the output's lock) and what the sink holds open."""
        try:
            self.ledger.close()
        finally:
            self.plan.sink.close()

    def model_loaded(self) -> None:
        """Time from opening the output to a loaded model (a first-use export included)."""
        self.timings["model_load"] = time.perf_counter() - self.started

    def scan(self, device: str) -> None:
        """Default the window size for device (it changes batching, not results), scan the input unless an earlier
        run did, and find the parts already finished."""
        if self.job.window_rows is None:
            self.job = dataclasses.replace(self.job, window_rows=DEFAULT_WINDOW_ROWS[device])
            self.plan = dataclasses.replace(self.plan, job=self.job)
        self.plan, self.done, self.timings["scan"] = scan_once(self.plan, self.ledger, self.progress)

    @property
    def ranges(self) -> NDArray[np.float32] | None:
        """The job's int8 ranges, once calibrated (None before, and for other dtypes)."""
        return calibration(self.ledger)

    def calibrate(self, emb: NDArray[np.float32]) -> NDArray[np.float32]:
        """int8: ranges from the first embeddings (N, D), recorded in the ledger before any part uses them."""
        ranges = calibrate_int8(emb)
        self.ledger.append({"kind": "calibration", "ranges": ranges.tolist(), "rows": len(emb)})
        return ranges

    @property
    def file_rows(self) -> list[int]:
        """The scan's row count of each input file, in order."""
        return rows_per_file(self.plan, self.ledger)

    def parts(self) -> dict[int, dict]:
        """The ledger's finished parts by index."""
        return self.ledger.parts()

    def summary(self) -> Summary:
        """This run's summary, started: it counts the parts found finished, and the progress display starts."""
        parts = self.parts()
        self.progress.label = "score" if self.job.task == "rerank" else "embed"
        self.progress.start(self.plan.total_rows, sum(parts[k]["input_rows"] for k in self.done))
        return Summary(task=self.job.task, output=self.plan.sink.label, total_rows=self.plan.total_rows, parts_resumed=len(self.done),
                       backend=self.plan.backend)

    def record_part(self, part: int, stats: PartStats, seconds: float, file: str | None, size: int, **extra) -> None:
        """A part is finished (its file in place): its one ledger record, fsynced."""
        self.ledger.append(part_record(part, self.job.rows_per_part, stats, seconds, file, size, **extra))

    def clean_stale(self) -> None:
        """Remove temp and part files the ledger does not vouch for (attempts of dead workers)."""
        clean_stale(self.plan.out, self.parts())

    def finish(self, summary: Summary) -> Summary:
        """Check coverage, let the sink finish, write _SUCCESS (last) and close the progress display."""
        return finish_run(self.plan, self.ledger, summary, self.progress, self.started, self.timings)
