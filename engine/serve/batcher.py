"""The cross-request batcher: one inference thread packs sequences of all pending requests into padded batches.

Fairness: work is taken in rounds of about `round_tokens` real tokens. Each round visits the pending requests in
round-robin order and gives each an equal share of the round (at least one sequence), so a request of 10,000 texts
advances a slice per round while a request of 1 text completes in the first round it joins. A request's sequences
are taken longest first (sorted once, at admission), so each slice of a large request holds neighbours of similar
length; inside a round the runtime's length-sorted, token-budget packing (plan_batches / pad_batch) then fills whole
batches with little padding. Without that sort, a round of a 1,600-text request held ~160 texts of every length, and
plan_batches' padding bound cut them into ~7x as many batches as offline encode runs on the same texts.

Each request names the runtime head it wants ("pooled": one vector per sequence; "tokens": per-token vectors, TEI's
/embed_all); a round packs the sequences of each head into batches of their own.

CPU: one inference at a time (the session uses every thread). Tokenization runs before admission, in the server's
tokenizer thread, so it overlaps inference on CPU and CUDA alike.
"""
from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ..runtime import Embedder, Sequences
from ..runtime.batching import pad_batch, plan_batches
from ..runtime.heads import HEADS
from .errors import PayloadTooLarge, QueueFull, ShuttingDown
from .metrics import Metrics


@dataclass(eq=False)
class Job:
    """One request's sequences and where their vectors go."""

    seqs: Sequences
    lengths: NDArray[np.int64]  # (S,) tokens per sequence
    order: NDArray[np.int64]  # (S,) sequence indices, longest first: the order they are scheduled in
    out: object  # (S, D) float32 for the pooled head, a list of S (t, H) arrays for the tokens head; filled as batches finish
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    submitted: float
    head: str = "pooled"
    next: int = 0  # position in order of the first sequence not yet scheduled
    done: int = 0  # sequences embedded
    cancelled: bool = False
    started: bool = False
    held_tokens: int = 0  # admitted tokens not yet embedded or dropped
    error: BaseException | None = field(default=None, repr=False)


class Batcher:
    """Admission (token-bounded queue), round-robin scheduling, and the inference thread."""

    def __init__(self, embedder: Embedder, metrics: Metrics, max_queued_tokens: int, max_wait_s: float,
                 round_tokens: int) -> None:
        self.embedder, self.metrics = embedder, metrics
        self.max_queued_tokens, self.max_wait_s, self.round_tokens = max_queued_tokens, max_wait_s, round_tokens
        self._cond = threading.Condition()
        self._pending: deque[Job] = deque()
        self._queued_tokens = 0
        self._stopping = False
        self._rate = 0.0  # real tokens/s of recent batches, for Retry-After
        self._thread = threading.Thread(target=self._loop, name="engine-batcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def queued_tokens(self) -> int:
        """Tokens admitted and not yet embedded."""
        return self._queued_tokens

    @property
    def queued_requests(self) -> int:
        """Requests with sequences not yet scheduled."""
        return len(self._pending)

    def stop(self) -> None:
        """Finish what was admitted, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()

    async def embed(self, seqs: Sequences, head: str = "pooled"):
        """Per-sequence results of seqs, in order: (S, D) float32 vectors, or for head "tokens" a list of (t, H)
        arrays. Cancelling the caller drops unscheduled sequences."""
        return await self.wait(self.submit(seqs, head))

    def submit(self, seqs: Sequences, head: str = "pooled") -> Job:
        """Admit seqs (or raise PayloadTooLarge / QueueFull / ShuttingDown); on the event loop's thread."""
        loop = asyncio.get_running_loop()
        lengths = np.fromiter((len(x) for x in seqs.ids), dtype=np.int64, count=len(seqs.ids))
        n = len(seqs.ids)
        out = [None] * n if HEADS[head].ragged else np.empty((n, self.embedder.dim), dtype=np.float32)
        job = Job(seqs, lengths, np.argsort(-lengths, kind="stable"), out, loop, loop.create_future(),
                  time.perf_counter(), head)
        self._admit(job)
        return job

    async def wait(self, job: Job):
        """The results of an admitted job; cancelling the caller drops its unscheduled sequences."""
        try:
            return await job.future
        except asyncio.CancelledError:
            self._cancel(job)
            raise

    # -- admission (event loop thread) ----------------------------------------------------------------------------
    def _admit(self, job: Job) -> None:
        tokens = int(job.lengths.sum())
        if tokens > self.max_queued_tokens:
            raise PayloadTooLarge(f"the request has {tokens} tokens, more than the queue holds (--max-queued-tokens "
                                  f"{self.max_queued_tokens}); split it into smaller requests", "input", "too_many_tokens")
        with self._cond:
            if self._stopping:
                raise ShuttingDown("the server is shutting down and takes no new work; retry on another instance")
            if self._queued_tokens + tokens > self.max_queued_tokens:
                wait = math.ceil(self._queued_tokens / self._rate) if self._rate else 1
                raise QueueFull(f"the queue is full ({self._queued_tokens} of {self.max_queued_tokens} tokens waiting); "
                                f"retry after {wait} s", retry_after=min(max(wait, 1), 60))
            job.held_tokens = tokens
            self._queued_tokens += tokens
            self._pending.append(job)
            self._gauges()
            self._cond.notify()

    def _cancel(self, job: Job) -> None:
        """The client went away: forget its unscheduled sequences (rows already in a running batch finish unused)."""
        with self._cond:
            job.cancelled = True
            if job in self._pending:
                self._pending.remove(job)
            dropped = len(job.lengths) - job.next
            self._release(job, job.held_tokens)
            job.next = len(job.lengths)
            self._gauges()
        self.metrics.dropped.inc(dropped)

    def _release(self, job: Job, tokens: int) -> None:
        """Return tokens of job to the queue budget (under the lock)."""
        tokens = min(tokens, job.held_tokens)
        job.held_tokens -= tokens
        self._queued_tokens -= tokens

    def _gauges(self) -> None:
        self.metrics.queue_requests.set(len(self._pending))
        self.metrics.queue_tokens.set(self._queued_tokens)

    # -- the inference thread --------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending:
                    return
                self._wait_for_more()
                work = self._take_round()
                self._gauges()
            if work:
                try:
                    self._run_round(work)
                except Exception as err:  # noqa: BLE001 - a bug in packing fails this round's requests, never hangs them
                    self._fail({job for job, _, _ in work}, err)

    def _wait_for_more(self) -> None:
        """With max_wait > 0, let a partial round fill for up to max_wait after its oldest request (under the lock)."""
        if self.max_wait_s <= 0:
            return
        deadline = min(j.submitted for j in self._pending) + self.max_wait_s
        while not self._stopping and self._unscheduled_tokens() < self.round_tokens:
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            self._cond.wait(left)

    def _unscheduled_tokens(self) -> int:
        return sum(int(j.lengths[j.order[j.next:]].sum()) for j in self._pending)

    def _take_round(self) -> list[tuple[Job, int, int]]:
        """(job, first, stop) slices for one round: round-robin, an equal token share per pending request (under the lock)."""
        share = max(self.round_tokens // max(len(self._pending), 1), 1)
        work, total, now = [], 0, time.perf_counter()
        for _ in range(len(self._pending)):
            if total >= self.round_tokens:
                break
            job = self._pending.popleft()
            csum = np.cumsum(job.lengths[job.order[job.next:]])
            take = max(1, int(np.searchsorted(csum, share, side="right")))
            start, job.next = job.next, job.next + take
            work.append((job, start, job.next))
            total += int(csum[take - 1])
            if not job.started:
                job.started = True
                self.metrics.queue_seconds.observe(now - job.submitted)
            if job.next < len(job.lengths):
                self._pending.append(job)  # back of the line
        return work

    def _run_round(self, work: list[tuple[Job, int, int]]) -> None:
        """Per head: pack the round's sequences length-sorted under the token budget, run each batch, scatter, resolve."""
        for head in dict.fromkeys(job.head for job, _, _ in work):
            self._run_head([w for w in work if w[0].head == head], head)

    def _run_head(self, work: list[tuple[Job, int, int]], head: str) -> None:
        owners = [(job, int(i)) for job, a, b in work for i in job.order[a:b]]
        ids = [job.seqs.ids[i] for job, i in owners]
        lengths = np.concatenate([job.lengths[job.order[a:b]] for job, a, b in work])
        emb = self.embedder
        for rows in plan_batches(lengths, emb.max_batch_tokens, None, emb.pad_multiple):
            live = np.asarray([r for r in rows if not owners[r][0].cancelled], dtype=np.int64)
            if len(live) < len(rows):
                self.metrics.dropped.inc(len(rows) - len(live))
            rows = live
            if len(rows) == 0:
                continue
            batch = pad_batch(ids, rows, emb.pad_id, emb.pad_multiple)
            started = time.perf_counter()
            try:
                out = emb.embed_batch(batch, head)
            except Exception as err:  # noqa: BLE001 - the requests in this batch get a 500, the server keeps serving
                self._fail({owners[r][0] for r in rows}, err)
                continue
            seconds = time.perf_counter() - started
            self._observe(batch, seconds)
            finished = []
            with self._cond:
                for k, r in enumerate(rows):
                    job, i = owners[r]
                    job.out[i] = out[k]
                    job.done += 1
                    self._release(job, int(job.lengths[i]))
                    if job.done == len(job.lengths):
                        finished.append(job)
                self._gauges()
            for job in finished:
                job.loop.call_soon_threadsafe(_resolve, job)

    def _observe(self, batch, seconds: float) -> None:
        m = self.metrics
        m.inference_seconds.observe(seconds)
        m.batch_sequences.observe(len(batch.index))
        m.batch_padded_tokens.observe(batch.input_ids.size)
        m.batch_real_tokens.inc(batch.real_tokens)
        rate = batch.real_tokens / max(seconds, 1e-6)
        self._rate = rate if not self._rate else 0.8 * self._rate + 0.2 * rate

    def _fail(self, jobs: set[Job], err: BaseException) -> None:
        with self._cond:
            for job in jobs:
                job.cancelled = True
                job.error = err
                if job in self._pending:
                    self._pending.remove(job)
                self._release(job, job.held_tokens)
            self._gauges()
        for job in jobs:
            job.loop.call_soon_threadsafe(_resolve, job)


def _resolve(job: Job) -> None:
    """On the event loop: hand the vectors (or the error) to the waiting request."""
    if job.future.done():
        return
    if job.error is not None:
        job.future.set_exception(job.error)
    else:
        job.future.set_result(job.out)
