"""Start `engine serve` as a user does (a subprocess on a free port) and wait for its ready line."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
READY = re.compile(r"ready on (http://\S+) \(model (\S+), device (\S+), providers ([^)]+)\)")


class Server:
    """`python -m engine serve ... --port 0` in a subprocess; .url once ready, .log for what it printed."""

    def __init__(self, log_path: Path, *args: str, env: dict | None = None, timeout: float = 180) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")
        extra_env = env
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
        env.pop("ENGINE_API_KEY", None)
        env.update(extra_env or {})
        self.proc = subprocess.Popen([sys.executable, "-m", "engine", "serve", "--port", "0", "--device", "cpu", *args],
                                     cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not (m := READY.search(self.log)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"engine serve did not become ready (exit {self.proc.returncode}):\n{self.log}")
            time.sleep(0.1)
        self.url, self.model, self.device, self.providers = m.groups()

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metric(self, name: str, **labels: str) -> float:
        """One sample of /metrics (0 when absent)."""
        want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")  # labels in declared order
        for line in httpx.get(self.url + "/metrics", timeout=10).text.splitlines():
            key, _, value = line.rpartition(" ")
            if key == want:
                return float(value)
        return 0.0

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def cos_min(a, b) -> float:
    """The smallest cosine similarity between rows of a and the same rows of b."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())
