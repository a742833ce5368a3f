"""Prometheus metrics (prometheus-client) in a registry of the server's own, served at GET /metrics."""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_POWERS = tuple(float(2**k) for k in range(0, 17))


class Metrics:
    """Every metric the server exports; prometheus-client's objects are thread-safe (the batcher thread updates some)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("engine_requests", "HTTP requests by route and status", ["route", "status"], registry=r)
        self.request_seconds = Histogram("engine_request_seconds", "Time from a request's arrival to its answer",
                                         ["route"], buckets=_SECONDS, registry=r)
        self.input_tokens = Counter("engine_input_tokens", "Tokens the model saw (special tokens included)", ["route"], registry=r)
        self.rerank_pairs = Counter("engine_rerank_pairs", "Query-document pairs a rerank route scored", ["route"],
                                    registry=r)
        self.batch_sequences = Histogram("engine_batch_sequences", "Sequences per padded batch", buckets=_POWERS, registry=r)
        self.batch_padded_tokens = Histogram("engine_batch_padded_tokens", "Padded tokens (rows x length) per batch",
                                             buckets=_POWERS, registry=r)
        self.batch_real_tokens = Counter("engine_batch_real_tokens", "Non-pad tokens run", registry=r)
        self.queue_requests = Gauge("engine_queue_requests", "Requests with texts not yet scheduled", registry=r)
        self.queue_tokens = Gauge("engine_queue_tokens", "Tokens admitted and not yet embedded", registry=r)
        self.queue_seconds = Histogram("engine_queue_seconds", "Time from admission to a request's first batch",
                                       buckets=_SECONDS, registry=r)
        self.inference_seconds = Histogram("engine_inference_seconds", "Session time per padded batch", buckets=_SECONDS, registry=r)
        self.json_seconds = Histogram("engine_json_seconds", "Time to encode a response body (JSON or base64)",
                                      buckets=_SECONDS, registry=r)
        self.cancelled = Counter("engine_cancelled_requests", "Requests whose client disconnected before the answer", registry=r)
        self.dropped = Counter("engine_dropped_sequences", "Sequences of disconnected clients removed before running", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
