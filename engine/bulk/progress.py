"""Progress of an embed job: a bar on a terminal, periodic log lines otherwise, nothing when quiet; the final summary."""
from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field


@dataclass
class Summary:
    """What a job did (this run), plus totals of the whole output."""

    task: str = "embed"  # "rerank": engine score's rows are scored pairs
    output: str = ""
    rows: int = 0  # rows written by this run
    total_rows: int = 0  # input rows, all runs
    written_rows: int = 0  # rows in the finished output, all runs
    real_tokens: int = 0
    truncated: int = 0
    skipped: int = 0  # bad rows dropped (--on-bad-row skip), all runs
    emptied: int = 0  # bad rows embedded as '' (--on-bad-row empty), all runs
    parts: int = 0
    parts_resumed: int = 0  # parts found finished in the ledger
    wall_seconds: float = 0.0
    timings: dict = field(default_factory=dict)
    already_complete: bool = False
    notes: list[str] = field(default_factory=list)  # what the sink did at the end (a LanceDB index, or why none)
    backend: dict = field(default_factory=dict)  # BackendChoice.record(): backend, precision, reason

    def count(self, stats) -> None:
        """Add the rows, tokens and truncated texts of a window or part (a PartStats) written by this run."""
        self.rows += stats.rows
        self.real_tokens += stats.real_tokens
        self.truncated += stats.truncated

    @property
    def rows_per_second(self) -> float:
        """End to end: rows over the whole wall time (model load, first-use export and scan included)."""
        return self.rows / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.real_tokens / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def embed_seconds(self) -> float:
        """Time spent reading, embedding and writing rows (no model load, no scan)."""
        return self.timings.get("embed", 0.0)

    def to_dict(self) -> dict:
        embed = self.embed_seconds
        return asdict(self) | {"rows_per_second": round(self.rows_per_second, 1),
                               "tokens_per_second": round(self.tokens_per_second, 1),
                               "embedding_rows_per_second": round(self.rows / embed, 1) if embed else 0.0,
                               "embedding_tokens_per_second": round(self.real_tokens / embed, 1) if embed else 0.0}

    def lines(self) -> list[str]:
        score = self.task == "rerank"
        if self.already_complete:
            return [f"{self.output} is already complete: {self.written_rows:,} rows in {self.parts} parts; nothing to do "
                    f"(pass --overwrite to {'score' if score else 'embed'} again)"]
        resumed = f", {self.parts_resumed} of them resumed from an earlier run" if self.parts_resumed else ""
        t, embed = self.timings, self.embed_seconds
        step = "scoring" if score else "embedding"
        lines = [
            f"scored {self.rows:,} pairs into {self.output} ({self.written_rows:,} rows in {self.parts} parts{resumed})"
            if score else
            f"embedded {self.rows:,} rows into {self.output} ({self.written_rows:,} rows in {self.parts} parts{resumed})",
            f"real tokens {self.real_tokens:,}; truncated {'pairs' if score else 'texts'} {self.truncated:,}; "
            f"skipped rows {self.skipped:,}; emptied rows {self.emptied:,}",
            *([f"backend {self.backend['backend']} {self.backend['precision']} ({self.backend['reason']})"]
              if self.backend else []),
            f"wall time {_duration(self.wall_seconds)} (model load {_duration(t.get('model_load', 0.0))}, "
            f"scan {_duration(t.get('scan', 0.0))}, {step} {_duration(embed)})",
        ]
        if embed:
            lines.append(f"{step} throughput {self.rows / embed:,.1f} rows/s, {self.real_tokens / embed:,.0f} tokens/s; "
                         f"end to end {self.rows_per_second:,.1f} rows/s")
        return lines + self.notes


def _duration(s: float) -> str:
    if s < 60:
        return f"{s:.1f}s"
    m, s = divmod(int(s), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Progress:
    """mode: 'bar' (stderr is a terminal), 'log' (periodic lines), 'quiet'."""

    def __init__(self, mode: str | None = None, stream=None, interval: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        if mode is None:
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "log"
        self.mode = mode
        self.interval = interval if mode == "log" else 0.2
        self.total = 0
        self.done = 0
        self.tokens = 0
        self.label = "embed"  # what the progress lines say is running ("score" for engine score)
        self._start_done = 0
        self._started = time.perf_counter()
        self._last = 0.0

    @classmethod
    def for_job(cls, quiet: bool) -> "Progress":
        return cls("quiet" if quiet else None)

    def message(self, text: str) -> None:
        """A one-off line (not in quiet mode)."""
        if self.mode == "quiet":
            return
        if self.mode == "bar":
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def scanning(self, rows: int) -> None:
        """During the scan (rows read so far): a live count on a terminal, a line per interval otherwise."""
        now = time.perf_counter()
        if self.mode == "quiet" or now - self._last < self.interval:
            return
        self._last = now
        if self.mode == "bar":
            self.stream.write(f"\r\033[Kscanning: {rows:,} rows read")
        else:
            self.stream.write(f"scanning: {rows:,} rows read\n")
        self.stream.flush()

    def start(self, total_rows: int, done_rows: int) -> None:
        self.total, self.done, self._start_done = total_rows, done_rows, done_rows
        self._started = time.perf_counter()
        self._last = 0.0

    def advance(self, rows: int, tokens: int) -> None:
        self.done += rows
        self.tokens += tokens
        now = time.perf_counter()
        if self.mode != "quiet" and now - self._last >= self.interval:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        rate = (self.done - self._start_done) / elapsed
        left = self.total - self.done
        eta = _duration(left / rate) if rate > 0 else "?"
        frac = self.done / self.total if self.total else 1.0
        stats = (f"{self.done:,}/{self.total:,} rows  {self.tokens / elapsed:,.0f} tokens/s  "
                 f"{rate:,.1f} rows/s  ETA {eta}")
        if self.mode == "bar":
            width = 30
            filled = int(width * frac)
            self.stream.write(f"\r\033[K[{'#' * filled}{'.' * (width - filled)}] {100 * frac:5.1f}% {stats}")
        else:
            self.stream.write(f"{self.label}: {100 * frac:5.1f}% {stats}\n")
        self.stream.flush()

    def finish(self, summary: Summary) -> None:
        if self.mode == "quiet":
            return
        if self.mode == "bar":
            self._draw(time.perf_counter())
            self.stream.write("\n")
        self.stream.flush()
