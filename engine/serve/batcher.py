"""The cross-request batcher: one inference thread packs sequences of all pending requests into padded batches.

Fairness: work is taken in rounds of about `round_tokens` real tokens. Each round visits the pending requests in
round-robin order and gives each an equal share of the round (at least one sequence), so a request of 10,000 texts
advances a slice per round while a request of 1 text completes in the first round it joins. A request's sequences
are taken longest first (sorted once, at admission), so each slice of a large request holds neighbours of similar
length; inside a round the runtime's length-sorted, token-budget packing (plan_batches / pad_batch) then fills whole
batches with little padding. Without that sort, a round of a 1,600-text request held ~160 texts of every length, and
plan_batches' padding bound cut them into ~7x as many batches as offline encode runs on the same texts.

A batch the model fails on is split in halves, recursively, until the sequences it fails on run alone: only their
requests fail (SequenceFailed, a 4xx naming the input), and every other request in the batch gets its vectors. If
every sequence of a batch shared by several requests fails alone, the model itself is failing: they get a 500.

Each request names the runtime head it wants ("pooled": one vector per sequence; "tokens": per-token vectors, TEI's
/embed_all; "score": a reranker's logits per (query, document) pair, whose batches carry segment ids; "sparse": a
SPLADE model's (indices, values) per sequence, ragged, /embed_sparse); a round packs
the sequences of each head into batches of their own.

CPU: one inference at a time (the session uses every thread). Tokenization runs before admission, in the server's
tokenizer thread, so it overlaps inference on CPU and CUDA alike.
"""
from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque

import numpy as np
from numpy.typing import NDArray

from ..runtime import Embedder, Reranker, Sequences
from ..runtime.pairs import PairSequences
from ..runtime.batching import pad_batch, plan_batches
from ..runtime.heads import HEADS
from .errors import PayloadTooLarge, QueueFull, ShuttingDown
from .jobs import Job, SequenceFailed, resolve
from .metrics import Metrics

log = logging.getLogger("engine.serve")
SCORE = "score"  # the reranker's head: pair sequences, padded with their segment ids


class Batcher:
    """Admission (token-bounded queue), round-robin scheduling, and the inference thread."""

    def __init__(self, embedder: Embedder | Reranker, metrics: Metrics, max_queued_tokens: int, max_wait_s: float,
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

    async def embed(self, seqs: Sequences | PairSequences, head: str = "pooled"):
        """Per-sequence results of seqs, in order: (S, D) float32 vectors, or for head "tokens" a list of (t, H)
        arrays. Cancelling the caller drops unscheduled sequences."""
        return await self.wait(self.submit(seqs, head))

    def submit(self, seqs: Sequences | PairSequences, head: str = "pooled") -> Job:
        """Admit seqs (or raise PayloadTooLarge / QueueFull / ShuttingDown); on the event loop's thread."""
        loop = asyncio.get_running_loop()
        lengths = np.fromiter((len(x) for x in seqs.ids), dtype=np.int64, count=len(seqs.ids))
        n = len(seqs.ids)
        width = self.embedder.num_labels if head == SCORE else getattr(self.embedder, "dim", 0)
        out = [None] * n if HEADS[head].ragged else np.empty((n, width), dtype=np.float32)
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
        if head == SCORE:  # ids and segment ids travel together: (ids, type_ids)
            ids = (ids, [job.seqs.type_ids[i] for job, i in owners])
        lengths = np.concatenate([job.lengths[job.order[a:b]] for job, a, b in work])
        emb = self.embedder
        for rows in plan_batches(lengths, emb.max_batch_tokens, None, emb.pad_multiple):
            live = np.asarray([r for r in rows if not owners[r][0].cancelled], dtype=np.int64)
            if len(live) < len(rows):
                self.metrics.dropped.inc(len(rows) - len(live))
            if len(live) == 0:
                continue
            failed = self._run_or_split(ids, owners, live, head)
            jobs = {owners[r][0] for r in live}
            if len(failed) == len(live) and len(jobs) > 1:  # every sequence of several requests fails alone: the
                self._fail(jobs, failed[0][1])  # model is failing, not an input (a 500)
                continue
            for r, err in failed:
                job, i = owners[r]
                self._fail({job}, SequenceFailed(i, err))

    def _run_or_split(self, ids, owners, rows: NDArray[np.int64], head: str) -> list[tuple[int, BaseException]]:
        """Run rows as one batch; if the model fails on it, run each half the same way, so that sequences batched with
        one the model cannot take still get their vectors. Returns the rows that failed alone, with their errors."""
        rows = np.asarray([r for r in rows if not owners[r][0].cancelled], dtype=np.int64)
        if len(rows) == 0:
            return []
        err = self._run_batch(ids, owners, rows, head)
        if err is None:
            return []
        if len(rows) == 1:
            return [(int(rows[0]), err)]
        log.warning("engine serve: a batch of %d sequences failed in the model (%s: %s); splitting it to find the "
                    "sequences it fails on", len(rows), type(err).__name__, str(err)[:200])
        half = len(rows) // 2
        return self._run_or_split(ids, owners, rows[:half], head) + self._run_or_split(ids, owners, rows[half:], head)

    def _run_batch(self, ids, owners, rows: NDArray[np.int64], head: str) -> BaseException | None:
        """One padded batch through the model, its results scattered to their requests (each resolved when complete);
        the model's error if it failed."""
        emb = self.embedder
        started = time.perf_counter()
        try:
            if head == SCORE:
                batch = pad_batch(ids[0], rows, emb.pad_id, emb.pad_multiple, ids[1])
                out = emb.score_batch(batch)
            else:
                batch = pad_batch(ids, rows, emb.pad_id, emb.pad_multiple)
                out = emb.embed_batch(batch, head)
        except Exception as err:  # noqa: BLE001 - the caller splits the batch; the server keeps serving
            return err
        self._observe(batch, time.perf_counter() - started)
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
            job.loop.call_soon_threadsafe(resolve, job)
        return None

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
                job.error = job.error or err  # the first failure is the one reported
                if job in self._pending:
                    self._pending.remove(job)
                self._release(job, job.held_tokens)
            self._gauges()
        for job in jobs:
            job.loop.call_soon_threadsafe(resolve, job)
