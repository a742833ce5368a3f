"""ServeConfig: everything `engine serve` was asked for, frozen and validated once."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import EmbedderConfig
from ..errors import ConfigError

# Server limits; each is a --option with this default.
DEFAULT_MAX_REQUEST_BYTES = 8 * 2**20  # 8 MiB of JSON: ~2,000 texts of 4 KB
DEFAULT_MAX_INPUTS = 2048  # inputs per request, OpenAI's own limit
DEFAULT_MAX_QUEUED_TOKENS = 2**19  # admitted but unfinished tokens; ~40 s of all-MiniLM-L6-v2 work on 2 CPU cores
DEFAULT_MAX_WAIT_MS = 0.0  # an idle engine starts at once; requests arriving during a run join the next one
DEFAULT_HEARTBEAT_S = 1.0  # a request running longer gets its 200 headers, then a space per second until its body
BUNDLED_MODEL_NAME = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class ServeConfig:
    """How to serve: the model (an EmbedderConfig), where to listen, who may call, and the limits."""

    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    host: str = "127.0.0.1"
    port: int = 8080  # 0: a free port, printed in the ready line
    api_key: str | None = None  # None: no authentication
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_inputs: int = DEFAULT_MAX_INPUTS
    max_queued_tokens: int = DEFAULT_MAX_QUEUED_TOKENS
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS
    heartbeat_s: float = DEFAULT_HEARTBEAT_S  # 0: no heartbeat, every answer waits for its body

    def __post_init__(self) -> None:
        if not isinstance(self.embedder, EmbedderConfig):
            raise ConfigError(f"embedder must be an EmbedderConfig, got {type(self.embedder).__name__}")
        if not isinstance(self.host, str) or not self.host:
            raise ConfigError(f"host must be a host name or address, got {self.host!r}")
        _int_in("port", self.port, 0, 65535)
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key.strip()):
            raise ConfigError("api_key must be a non-empty string, or unset for no authentication")
        _int_in("max_request_bytes", self.max_request_bytes, 1024, None)
        _int_in("max_inputs", self.max_inputs, 1, None)
        _int_in("max_queued_tokens", self.max_queued_tokens, 1, None)
        if isinstance(self.max_wait_ms, bool) or not isinstance(self.max_wait_ms, (int, float)) or not 0 <= self.max_wait_ms <= 10_000:
            raise ConfigError(f"max_wait_ms must be a number of milliseconds in 0..10000, got {self.max_wait_ms!r}")
        if isinstance(self.heartbeat_s, bool) or not isinstance(self.heartbeat_s, (int, float)) or not 0 <= self.heartbeat_s <= 60:
            raise ConfigError(f"heartbeat_s must be a number of seconds in 0..60, got {self.heartbeat_s!r}")

    @property
    def model_name(self) -> str:
        """The name /v1/models lists and responses carry: the --model argument's last part, or the bundled model's."""
        if self.embedder.model is None:
            return BUNDLED_MODEL_NAME
        return Path(self.embedder.model.rstrip("/")).name or self.embedder.model


def _int_in(name: str, value, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ConfigError(f"{name} must be in {low}..{high if high is not None else ''}, got {value}")
