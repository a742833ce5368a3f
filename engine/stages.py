"""The pre / core stages of encoding: tokenize and pad in a background thread while the session runs."""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from .batching import Batch, pad_batch, plan_batches
from .tokenize import tokenize

T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Run an iterator in a background thread, keeping up to depth items ready; re-raise its errors here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as err:  # handed to the consumer, which re-raises it
            q.put(err)

    thread = threading.Thread(target=work, daemon=True, name="engine-prefetch")
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def text_windows(tok, texts: list[str], window: int, truncated: list[int]) -> Iterator[tuple[int, list[NDArray[np.int64]]]]:
    """Tokenize window by window (bounded memory); record each window's truncated-text count in `truncated`."""
    for start in range(0, len(texts), window):
        tk = tokenize(tok, texts[start:start + window])
        truncated.append(int(tk.truncated.sum()))
        yield start, tk.ids


def id_windows(ids: list[NDArray[np.int64]], window: int) -> Iterator[tuple[int, list[NDArray[np.int64]]]]:
    """Already tokenized sequences (chunk windows), split into sorting windows."""
    for start in range(0, len(ids), window):
        yield start, ids[start:start + window]


def padded_batches(windows: Iterable[tuple[int, list[NDArray[np.int64]]]], max_batch_tokens: int,
                   max_batch_size: int | None, pad_id: int, pad_multiple: int) -> Iterator[tuple[int, Batch]]:
    """Sort each window by token length, pack it under the token budget, pad; yield (window offset, batch)."""
    for start, ids in windows:
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        for rows in plan_batches(lengths, max_batch_tokens, max_batch_size, pad_multiple):
            yield start, pad_batch(ids, rows, pad_id, pad_multiple)


def run_batch(sess: ort.InferenceSession, batch: Batch, input_names: list[str], outputs: list[str], device: str) -> list[np.ndarray]:
    """Run one batch; on CUDA bind inputs and outputs on the device and copy back only the requested outputs."""
    feed = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    if "token_type_ids" in input_names:
        feed["token_type_ids"] = np.zeros_like(batch.input_ids)
    if device != "cuda":
        return sess.run(outputs, feed)
    binding = sess.io_binding()
    for name, arr in feed.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(arr, "cuda", 0))
    for name in outputs:
        binding.bind_output(name, "cuda")
    sess.run_with_iobinding(binding)
    return binding.copy_outputs_to_cpu()
