"""Prometheus metrics for ``GET /metrics``, with ``prometheus-client``.

Counters and histograms are per app (their own ``CollectorRegistry``, no module
globals); gauges (loaded models, their memory and slots, requests in flight) are
read from the server's state at scrape time, so they are never stale.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from terminus.server.middleware import ACCESS_KEY, AccessRecord

if TYPE_CHECKING:
    from terminus.server.state import ServerState

TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DECODE_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 35.0, 50.0, 75.0, 100.0, 150.0, 250.0, 500.0)


class ServerMetrics:
    def __init__(self, state: ServerState) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "terminus_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "terminus_http_request_duration_seconds",
            "Time from request to the end of the response (streams included)",
            ["route"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "terminus_tokens",
            "Tokens read (prompt) and written (completion), by model",
            ["model", "kind"],
            registry=self.registry,
        )
        self.ttft = Histogram(
            "terminus_time_to_first_token_seconds",
            "Time to the first generated token, by model",
            ["model"],
            buckets=TTFT_BUCKETS,
            registry=self.registry,
        )
        self.decode_rate = Histogram(
            "terminus_decode_tokens_per_second",
            "Generation speed of a request, by model",
            ["model"],
            buckets=DECODE_BUCKETS,
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes and friends
        self.registry.register(_StateCollector(state))

    def observe(
        self, route: str, method: str, status: int, seconds: float, record: AccessRecord
    ) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.duration.labels(route).observe(seconds)
        model = record.model
        if model is None:
            return
        if record.prompt_tokens:
            self.tokens.labels(model, "prompt").inc(record.prompt_tokens)
        if record.completion_tokens:
            self.tokens.labels(model, "completion").inc(record.completion_tokens)
        if record.ttft_s is not None:
            self.ttft.labels(model).observe(record.ttft_s)
        if record.tokens_per_s:
            self.decode_rate.labels(model).observe(record.tokens_per_s)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _StateCollector(Collector):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        loaded = self.state.client.loaded_models()
        yield GaugeMetricFamily(
            "terminus_models_loaded", "Models loaded in this server", value=len(loaded)
        )
        memory = GaugeMetricFamily(
            "terminus_model_memory_bytes", "Estimated memory of a loaded model", labels=["model"]
        )
        busy = GaugeMetricFamily(
            "terminus_model_busy_slots", "Requests a loaded model is serving", labels=["model"]
        )
        slots = GaugeMetricFamily(
            "terminus_model_slots",
            "Requests a model runs at once (llama.cpp slots)",
            labels=["model"],
        )
        queued = GaugeMetricFamily(
            "terminus_model_queued_requests",
            "Requests waiting for a free slot of a model",
            labels=["model"],
        )
        for info in loaded:
            memory.add_metric([info.id], info.memory_bytes)
            busy.add_metric([info.id], info.active_requests)
            if info.parallel:
                slots.add_metric([info.id], info.parallel)
                queued.add_metric([info.id], max(0, info.active_requests - info.parallel))
        yield from (memory, busy, slots, queued)
        yield GaugeMetricFamily(
            "terminus_requests_in_flight",
            "Generation and embedding requests admitted and not yet finished",
            value=self.state.active,
        )
        yield GaugeMetricFamily(
            "terminus_requests_max",
            "Requests admitted at once (--max-concurrent); more are answered 429",
            value=self.state.settings.max_concurrent,
        )


def route_label(scope: Scope) -> str:
    """The route's path template (``/v1/responses/{response_id}``), never the raw path:
    the number of label values stays bounded."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class MetricsMiddleware:
    """Counts every HTTP request when its response has ended (streams included)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = scope.setdefault(ACCESS_KEY, AccessRecord())
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe(
                route_label(scope),
                str(scope.get("method")),
                status,
                time.perf_counter() - started,
                record,
            )
