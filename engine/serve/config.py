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
DEFAULT_MAX_TEXT_CHARS = 100_000  # characters in one text, counted before tokenization (~0.2 s of tokenizer time)
DEFAULT_MAX_HEADER_BYTES = 64 * 2**10  # request line and headers; larger ones get 431
DEFAULT_IDLE_TIMEOUT_S = 5.0  # a connection with no request in progress is closed after this (uvicorn's keep-alive)
DEFAULT_READ_TIMEOUT_S = 60.0  # a request's headers and body must all arrive within this of its first byte, or 408
DEFAULT_DRAIN_TIMEOUT_S = 30.0  # after SIGTERM, in-flight requests get this long; then every connection is closed
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
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S
    drain_timeout_s: float = DEFAULT_DRAIN_TIMEOUT_S

    def __post_init__(self) -> None:
        if not isinstance(self.embedder, EmbedderConfig):
            raise ConfigError(f"embedder must be an EmbedderConfig, got {type(self.embedder).__name__}")
        if not isinstance(self.host, str) or not self.host:
            raise ConfigError(f"host must be a host name or address, got {self.host!r}")
        _int_in("port", self.port, 0, 65535)
        _check_api_key(self.api_key)
        _int_in("max_request_bytes", self.max_request_bytes, 1024, None)
        _int_in("max_inputs", self.max_inputs, 1, None)
        _int_in("max_queued_tokens", self.max_queued_tokens, 1, None)
        if isinstance(self.max_wait_ms, bool) or not isinstance(self.max_wait_ms, (int, float)) or not 0 <= self.max_wait_ms <= 10_000:
            raise ConfigError(f"max_wait_ms must be a number of milliseconds in 0..10000, got {self.max_wait_ms!r}")
        _seconds("heartbeat_s", self.heartbeat_s, 0, 60)
        _int_in("max_text_chars", self.max_text_chars, 1, None)
        _int_in("max_header_bytes", self.max_header_bytes, 1024, None)
        _seconds("idle_timeout_s", self.idle_timeout_s, 0.1, 3600)
        _seconds("read_timeout_s", self.read_timeout_s, 0.1, 3600)
        _seconds("drain_timeout_s", self.drain_timeout_s, 0, 3600)

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


def _seconds(name: str, value, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(f"{name} must be a number of seconds in {low:g}..{high:g}, got {value!r}")


def _check_api_key(key) -> None:
    """None (no authentication) or a key a client can send: HTTP strips a header value's surrounding whitespace and
    carries printable ASCII, so a key with either could never match (every request would get 401)."""
    if key is None:
        return
    if not isinstance(key, str) or not key:
        raise ConfigError("api_key must be a non-empty string, or unset for no authentication")
    # the messages never show the key: they go to logs
    if key != key.strip():
        raise ConfigError("the API key has leading or trailing whitespace, which HTTP strips from the Authorization "
                          "header, so no client could ever send it; remove the whitespace (--api-key / ENGINE_API_KEY)")
    bad = next((i for i, c in enumerate(key) if not " " <= c <= "~"), None)
    if bad is not None:
        kind = "a non-ASCII character" if ord(key[bad]) > 127 else "a control character"
        raise ConfigError(f"the API key holds {kind} (at character {bad + 1} of {len(key)}); a key must be printable "
                          f"ASCII (letters, digits, punctuation, inner spaces), what an Authorization header carries "
                          f"(--api-key / ENGINE_API_KEY)")
