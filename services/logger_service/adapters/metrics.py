"""Prometheus metrics of the logger: the projector's progress and the date cache.

The projector serves them with `shared.metrics.start_metrics_server` on
`PROJECTOR_METRICS_PORT`; the cache counter is exposed by the read API's `/metrics`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence

from prometheus_client import Counter, Gauge, Histogram

from services.logger_service.service_layer.status import lag_seconds
from shared.metrics import ThrottledGauges
from shared.stream.bus import EventBus

log = logging.getLogger("taskstream.projector")

CACHE_REQUESTS = Counter(
    "taskstream_cache_requests_total", "Date-page cache lookups of GET /tasks?date=",
    ["result"],
)
LAG_EVENTS = Gauge(
    "taskstream_projector_lag_events", "Stream head minus the projection's checkpoint",
    multiprocess_mode="max",
)
LAG_SECONDS = Gauge(
    "taskstream_projector_lag_seconds", "Age of the oldest event not applied yet",
    multiprocess_mode="max",
)
BATCH_SECONDS = Histogram(
    "taskstream_projector_batch_seconds", "Time to apply and commit one batch",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS_APPLIED = Counter(
    "taskstream_projector_events_applied_total", "Events applied to the projections",
)
DEAD_LETTERED = Counter(
    "taskstream_projector_dead_letters_total", "Events this projector sent to the dead letters",
)
DEAD_LETTERS = Gauge(
    "taskstream_projector_dead_letter_entries", "Entries in the dead-letter stream",
    multiprocess_mode="max",
)


def count_cache(result: str) -> None:
    """Count one date-page lookup (`hit` or `miss`)."""
    CACHE_REQUESTS.labels(result).inc()


class ProjectorMetrics(ThrottledGauges):
    """The consumers' observer: counts batches, refreshes lag at most every `interval` s.

    One for every partition of the log (`partitions`: each one's stream and checkpoint), so
    the gauges are the whole log's: lag in events summed, in seconds the oldest, dead letters
    summed."""

    def __init__(self, partitions: Sequence[tuple[EventBus, Callable[[], int]]],
                 interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(interval, clock)
        self.partitions = list(partitions)

    def committed(self, applied: int, seconds: float) -> None:
        """Count the batch and time it."""
        if applied:
            EVENTS_APPLIED.inc(applied)
            BATCH_SECONDS.observe(seconds)
        self.tick()

    def dead_lettered(self, seq: int) -> None:
        """Count a dead letter."""
        DEAD_LETTERED.inc()

    def refresh(self) -> None:
        """Read checkpoints, stream heads and dead-letter counts into the gauges."""
        now = dt.datetime.now(dt.UTC)
        events, seconds, dead = 0, 0.0, 0
        for bus, read_checkpoint in self.partitions:
            checkpoint, head = read_checkpoint(), bus.head()
            events += max(0, head - checkpoint)
            seconds = max(seconds, lag_seconds(bus, checkpoint, head, now))
            dead += bus.dead_letter_count()
        LAG_EVENTS.set(events)
        LAG_SECONDS.set(seconds)
        DEAD_LETTERS.set(dead)
