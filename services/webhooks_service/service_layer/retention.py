"""The outbox's retention loop: every interval, finished deliveries older than the retention
are deleted in batches until none is left (`adapters.retention`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.exc import IntegrityError

from shared.logs import first_line
from shared.stream.transient import is_transient

log = logging.getLogger("taskstream.webhooks")

INTERVAL_SECONDS = 60.0
BATCH = 5000

Prune = Callable[[int], tuple[int, int]]  # batch size -> deliveries, events deleted


class Retention:
    """Deletes what the outbox no longer needs, a batch at a time."""

    def __init__(self, prune: Prune, interval: float = INTERVAL_SECONDS,
                 batch: int = BATCH) -> None:
        self.prune, self.interval, self.batch = prune, interval, batch

    def sweep(self) -> tuple[int, int]:
        """Prune batches until one comes back short; the totals deleted."""
        deliveries = events = 0
        while True:
            gone, unused = self.prune(self.batch)
            deliveries, events = deliveries + gone, events + unused
            if gone < self.batch:
                break
        if deliveries:
            log.info("outbox retention deleted %d deliveries and %d events", deliveries, events)
        return deliveries, events

    def run(self, stop: threading.Event) -> None:
        """Sweep every interval until `stop`; a database that is away is waited out, and so
        is a sweep that met an event being queued again (its delete then breaks the
        deliveries' foreign key: the sweep is rolled back and tried at the next interval)."""
        while not stop.is_set():
            try:
                self.sweep()
            except IntegrityError as exc:
                log.info("outbox retention met an event queued again meanwhile; next time: %s",
                         first_line(exc))
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("outbox retention postponed: %s", first_line(exc))
            stop.wait(self.interval)
