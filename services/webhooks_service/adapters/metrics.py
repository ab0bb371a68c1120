"""Prometheus metrics of the `webhooks` process, served on `WEBHOOKS_METRICS_PORT`:
deliveries, failures, the retry queue's depth and the delivery lag."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from prometheus_client import Counter, Gauge, Histogram

from services.webhooks_service.adapters.outbox import OutboxFigures
from services.webhooks_service.service_layer.attempts import DELIVERED, FAILED, Outcome
from shared.metrics import ThrottledGauges
from shared.stream.bus import EventBus

log = logging.getLogger("taskstream.webhooks")

DELIVERIES = Counter("taskstream_webhook_deliveries_total",
                     "Deliveries a receiver accepted (a 2xx answer)")
FAILURES = Counter("taskstream_webhook_failures_total",
                   "Attempts that failed: `http` (not 2xx), `network` (no answer), `refused` "
                   "(the target's address may not be reached)", ["reason"])
GIVEN_UP = Counter("taskstream_webhook_given_up_total",
                   "Deliveries given up after the retry window (their subscription paused)")
PENDING = Gauge("taskstream_webhook_pending_deliveries", "Deliveries queued, not delivered yet",
                multiprocess_mode="max")
RETRY_QUEUE = Gauge("taskstream_webhook_retry_queue_depth",
                    "Pending deliveries that failed at least once (waiting for a retry)",
                    multiprocess_mode="max")
OLDEST_PENDING = Gauge("taskstream_webhook_oldest_pending_seconds",
                       "Age of the oldest event with a delivery pending", multiprocess_mode="max")
STREAM_LAG = Gauge("taskstream_webhook_stream_lag_events",
                   "Stream head minus the last event queued for the webhooks",
                   multiprocess_mode="max")
DELIVERY_LAG = Histogram(
    "taskstream_webhook_delivery_lag_seconds",
    "From the event's commit to its delivery's 2xx (recorded)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400))


def failure_reason(outcome: Outcome) -> str:
    """`http`, `refused` or `network`."""
    if outcome.answer.status is not None:
        return "http"
    return "refused" if (outcome.answer.error or "").startswith("refused") else "network"


class WebhookMetrics(ThrottledGauges):
    """Hears the senders and the consumer; refreshes the gauges every `interval` s."""

    def __init__(self, bus: EventBus, checkpoint: Callable[[], int],
                 figures: Callable[[], OutboxFigures], interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(interval, clock)
        self.bus = bus
        self.checkpoint = checkpoint
        self.figures = figures

    def recorded(self, outcomes: Sequence[Outcome]) -> None:
        """Count deliveries and failures; time each delivery from its event's commit."""
        now = time.time()
        for outcome in outcomes:
            if outcome.status == DELIVERED:
                DELIVERIES.inc()
                DELIVERY_LAG.observe(max(0.0, now - outcome.attempt.occurred_at.timestamp()))
                continue
            FAILURES.labels(failure_reason(outcome)).inc()
            if outcome.status == FAILED:
                GIVEN_UP.inc()

    def committed(self, applied: int, seconds: float) -> None:
        """A batch of events was queued (the gauges follow in `run`)."""

    def dead_lettered(self, seq: int) -> None:
        """Nothing counted here (the dead-letter stream holds it)."""

    def run(self, stop: threading.Event) -> None:
        """Refresh the gauges every `interval` seconds until `stop` (a loop of its own, so
        that neither a busy sender nor an idle stream leaves them stale)."""
        while not stop.wait(self.interval):
            self.tick()

    def refresh(self) -> None:
        """Read the outbox's figures and the stream's head into the gauges."""
        found = self.figures()
        PENDING.set(found.pending)
        RETRY_QUEUE.set(found.retrying)
        OLDEST_PENDING.set(found.oldest_seconds)
        STREAM_LAG.set(max(0, self.bus.head() - self.checkpoint()))
