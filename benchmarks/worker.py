"""One process per system, so that each system's peak RSS (and GPU memory) is its own.

The coordinator starts a Worker per system (multiprocessing 'spawn': a clean interpreter, thread limits set in its
environment before numpy / torch load), the worker loads its model once, and then runs what it is sent, one request at
a time. Workers wait idle on their pipe while another runs, so round-robin interleaving costs no CPU contention.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback
from contextlib import contextmanager


def proc_status_mb(pid: int | str = "self") -> dict:
    """VmRSS (now) and VmHWM (peak) of a process in MiB, from /proc; empty where /proc is missing."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[{"VmRSS": "rss_mb", "VmHWM": "rss_peak_mb"}[key]] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        import resource

        out["rss_peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def gpu_process_mb(pid: int | None = None) -> float | None:
    """GPU memory nvidia-smi attributes to this process (context + allocator pools), or None when unknown."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return None
    pid = pid or os.getpid()
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(pid):
            try:
                return float(parts[1])
            except ValueError:
                return None
    return None


def gpu_device_used_mb() -> float | None:
    """Memory in use on GPU 0 (all processes), from nvidia-smi; None when unavailable."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True, timeout=20).stdout
        return float(out.strip().splitlines()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def _serve(conn, cfg) -> None:
    """Worker main loop: build the runner, then answer ('run', texts, options) until ('stop',)."""
    from .systems import make_runner, warm_up

    gpu_before = gpu_device_used_mb() if cfg.device == "cuda" else None
    try:
        started = time.perf_counter()
        runner = make_runner(cfg)
        info = {"load_seconds": round(time.perf_counter() - started, 2), "pid": os.getpid()}
        if hasattr(runner, "providers"):
            info["providers"] = runner.providers
        conn.send(("ready", info))
    except BaseException:  # noqa: BLE001 - reported to the coordinator, which skips the system
        conn.send(("error", traceback.format_exc()))
        return
    torch = None
    if cfg.kind in ("hf", "st") and cfg.device == "cuda":
        import torch
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            return
        _, texts, opts = msg
        try:
            if opts.get("warm_up"):
                warm_up(runner, texts)
            if torch is not None:
                torch.cuda.reset_peak_memory_stats()
            res = runner.run(texts)
            out = {"texts": res.texts, "real_tokens": res.real_tokens, "padded_tokens": res.padded_tokens,
                   "seconds": res.seconds, **proc_status_mb()}
            if res.session_seconds is not None:
                out |= {"session_seconds": res.session_seconds, "batches": res.batches}
            if cfg.device == "cuda":
                out["gpu_process_mb"] = gpu_process_mb()
                if torch is not None:
                    out["gpu_torch_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
                now = gpu_device_used_mb()
                if now is not None and gpu_before is not None:
                    out["gpu_device_growth_mb"] = round(now - gpu_before, 1)
            conn.send(("ok", out, res.embeddings if opts.get("embeddings") else None))
        except BaseException:  # noqa: BLE001
            conn.send(("error", traceback.format_exc()))


@contextmanager
def _env(overrides: dict):
    """Temporarily set environment variables (a spawned child copies the parent's environment at start)."""
    old = {k: os.environ.get(k) for k in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class WorkerError(RuntimeError):
    """A worker failed to load its system or to run a request; the message carries its traceback."""


class Worker:
    """A spawned process that hosts one system."""

    def __init__(self, cfg, timeout: float = 1800) -> None:
        self.cfg, self.timeout, self.info, self.error = cfg, timeout, None, None
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        threads = str(cfg.threads)
        env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
               "TOKENIZERS_PARALLELISM": "true", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error",
               "TQDM_DISABLE": "1"}
        with _env(env):
            self.proc = ctx.Process(target=_serve, args=(child, cfg), daemon=True, name=f"bench-{cfg.name}")
            self.proc.start()
        child.close()

    def wait_ready(self) -> bool:
        """Block until the model is loaded; False (with .error set) when loading failed."""
        msg = self._recv()
        if msg[0] == "ready":
            self.info = msg[1]
            return True
        self.error = msg[1]
        self.close()
        return False

    def run(self, texts: list[str], warm_up: bool = False, embeddings: bool = False) -> tuple[dict, object]:
        """Time one run of texts in the worker; returns (measurements, embeddings or None)."""
        self.conn.send(("run", list(texts), {"warm_up": warm_up, "embeddings": embeddings}))
        msg = self._recv()
        if msg[0] != "ok":
            raise WorkerError(f"{self.cfg.name}: {msg[1]}")
        return msg[1], msg[2]

    def _recv(self):
        if not self.conn.poll(self.timeout):
            self.close()
            raise WorkerError(f"{self.cfg.name}: no answer in {self.timeout:.0f}s")
        try:
            return self.conn.recv()
        except EOFError as err:
            code = self.proc.exitcode
            raise WorkerError(f"{self.cfg.name}: worker process died (exit code {code}; killed for memory?)") from err

    def close(self) -> dict:
        """Stop the process; returns its last /proc numbers (peak RSS) read just before it exits."""
        last = proc_status_mb(self.proc.pid) if self.proc.is_alive() else {}
        try:
            if self.proc.is_alive():
                self.conn.send(("stop",))
        except (OSError, BrokenPipeError):
            pass
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)
        return last


class Pool:
    """Live workers keyed by their SystemConfig: sections that need the same system share its process.

    A system's peak RSS is therefore the peak over every section it has served so far; the suite orders its sections so
    the speed measurements come before the large parity / retrieval runs.
    """

    def __init__(self, log=print) -> None:
        self.log, self.live, self.failed = log, {}, {}

    def get(self, cfgs: list) -> tuple[dict, dict]:
        """Workers for cfgs, started together (imports overlap); returns ({name: Worker}, {name: error})."""
        new = {c: Worker(c) for c in cfgs if c not in self.live and c not in self.failed}
        for cfg, w in new.items():
            try:
                ok = w.wait_ready()
            except WorkerError as err:
                ok, w.error = False, str(err)
            if ok:
                self.live[cfg] = w
            else:
                self.failed[cfg] = w.error or "unknown error"
                self.log(f"  {cfg.name}: could not start: {self.failed[cfg].strip().splitlines()[-1]}")
        ready = {c.name: self.live[c] for c in cfgs if c in self.live}
        errors = {c.name: self.failed[c] for c in cfgs if c in self.failed}
        return ready, errors

    def release(self, keep: list) -> None:
        """Stop every live worker whose config is not in keep."""
        for cfg in [c for c in self.live if c not in keep]:
            self.live.pop(cfg).close()

    def close(self) -> None:
        self.release([])
