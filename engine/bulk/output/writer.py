"""WriterThread: writes row groups into the current part (a parquet temp file, or LanceDB upserts); a commit finishes
the part (renames the file) and hands it to on_commit, which records it in the ledger.

The main thread only embeds; parquet encoding, fsyncs and ledger appends happen here. The queue is short, so memory
stays bounded by a couple of windows, and an error in this thread surfaces in the main thread on its next put().
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Callable

import pyarrow as pa

# (part, the commit's payload, file name or None, bytes[, the part's extra ledger fields, when its commit() gave some])
OnCommit = Callable[..., None]


class WriterThread:
    """Apply ('rows', part, table) and ('commit', part, payload) operations in order."""

    def __init__(self, open_part: Callable[[int, pa.Schema], object], on_commit: OnCommit) -> None:
        # open_part(index, schema) -> a part with write(table), commit() -> (file name or None, bytes[, extra ledger
        # fields]) and abort()
        self.open_part, self.on_commit = open_part, on_commit
        self.q: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self._writer = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="engine-embed-writer")
        self._thread.start()

    def put(self, op: tuple | None) -> None:
        """Queue one operation (None ends the thread); re-raise the thread's error instead of blocking on it."""
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.q.put(op, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        try:
            while True:
                op = self.q.get()
                if op is None:
                    return
                kind, part, payload = op
                if kind == "rows":
                    if self._writer is None:
                        self._writer = self.open_part(part, payload.schema)
                    self._writer.write(payload)
                else:  # commit
                    name, size, *extra = self._writer.commit() if self._writer is not None else (None, 0)
                    self._writer = None
                    self.on_commit(part, payload, name, size, *extra)  # a part's extra ledger fields, if any
        except BaseException as err:  # surfaced in the main thread by put() / close()
            self.error = err
            if self._writer is not None:
                self._writer.abort()
            while True:  # drain so the producer never blocks
                try:
                    if self.q.get(timeout=0.5) is None:
                        return
                except queue.Empty:
                    return

    def close(self) -> None:
        """Finish the queued work and wait for it; re-raise the thread's error, if any."""
        self.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def abandon(self) -> None:
        """Stop after the queued work without committing the open part (its temp file is removed on resume)."""
        deadline = time.monotonic() + 60
        while self._thread.is_alive() and time.monotonic() < deadline:
            try:
                self.q.put(None, timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
