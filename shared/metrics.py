"""Prometheus metrics: HTTP requests by route and status, and a `/metrics` endpoint.

Under gunicorn every worker is its own process, so `deploy/gunicorn.conf.py` points
`PROMETHEUS_MULTIPROC_DIR` at a private folder and `/metrics` aggregates all workers.
Processes that serve no HTTP (relay, projector) expose their metrics with
`start_metrics_server`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

log = logging.getLogger("taskstream.metrics")

HTTP_REQUESTS = Counter(
    "taskstream_http_requests_total", "HTTP requests answered",
    ["service", "route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "taskstream_http_request_duration_seconds", "Time to answer an HTTP request",
    ["service", "route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Reads given `min_seq` that wait for the side they read from to apply it (shared.positions).
READS_WAITING = Gauge(
    "taskstream_reads_waiting", "Reads waiting for a position of the event log (min_seq)",
    multiprocess_mode="livesum",
)
READ_WAIT_SECONDS = Histogram(
    "taskstream_read_wait_seconds", "How long a read waited for its min_seq, by outcome",
    ["outcome"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)


def registry() -> CollectorRegistry:
    """The registry to expose: all workers' in multiprocess mode, else this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)
        return collected
    from prometheus_client import REGISTRY

    return REGISTRY


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _record(service: str, response: Response) -> Response:
    started = g.pop("metrics_started", None)
    route = request.url_rule.rule if request.url_rule else "unmatched"
    if route == "/metrics" or started is None:
        return response
    HTTP_REQUESTS.labels(service, route, request.method, str(response.status_code)).inc()
    HTTP_LATENCY.labels(service, route, request.method).observe(time.perf_counter() - started)
    return response


def metrics_view() -> Response:
    """Prometheus text exposition of this service's metrics."""
    return Response(generate_latest(registry()), mimetype=CONTENT_TYPE_LATEST)


def init_metrics(app: Flask, service: str) -> None:
    """Count and time every request, and serve `/metrics`."""
    app.before_request(_start_timer)
    app.after_request(lambda response: _record(service, response))
    app.add_url_rule("/metrics", "metrics", metrics_view)


def start_metrics_server(port: int) -> None:
    """Serve `/metrics` on `port` from a background thread (0 disables it)."""
    if port:
        start_http_server(port, addr=os.environ.get("METRICS_BIND_HOST", "127.0.0.1"),
                          registry=registry())


def serve_metrics(port: int, process: str) -> None:
    """Expose a process's metrics on `port`; a taken port is logged, not fatal (the work the
    process does matters more than its metrics)."""
    try:
        start_metrics_server(port)
    except OSError as exc:
        log.warning("%s metrics not served on port %d: %s", process, port, exc)
    else:
        if port:
            log.info("%s metrics on port %d", process, port)


class ThrottledGauges:
    """Gauges read from storage at most every `interval` seconds: `tick` calls `refresh`
    when due; a failed read is logged and never raised (metrics never stop a process)."""

    def __init__(self, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self.next_refresh = 0.0

    def tick(self) -> None:
        """Refresh the gauges when due (never raises)."""
        if self.clock() < self.next_refresh:
            return
        self.next_refresh = self.clock() + self.interval
        try:
            self.refresh()
        except Exception as exc:  # metrics never stop the process
            logging.getLogger("taskstream.metrics").debug(
                "could not refresh %s: %s", type(self).__name__, exc)

    def refresh(self) -> None:
        """Read the figures into the gauges."""
        raise NotImplementedError
