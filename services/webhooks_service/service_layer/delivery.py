"""The senders: due deliveries claimed from the outbox, sent at once, their answers recorded.

One loop claims the head of every due queue (one task of one subscription) that it has room
for, leasing it past the longest request so that no other sender takes it meanwhile; a pool
of threads sends them; the loop records each answer as it comes back (delivered, retried
later, or given up) and claims again. Queues of other tasks go on while one waits for its
retry. New events wake the loop at once; retries that fall due are found by polling.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Protocol

from services.webhooks_service.config import DeliverySettings
from services.webhooks_service.service_layer.attempts import Answer, Attempt, Outcome, decide
from shared.logs import first_line
from shared.stream.outages import backoff_seconds
from shared.stream.transient import is_transient

log = logging.getLogger("taskstream.webhooks")


class Sender(Protocol):
    """Sends one request to a webhook target."""

    def send(self, url: str, headers: dict[str, str], body: bytes) -> Answer:
        """POST `body`; the receiver's status, or why there was none."""


class OutboxQueues(Protocol):
    """The outbox inside one transaction, as the senders see it."""

    def claim(self, limit: int, lease_seconds: float) -> list[Attempt]: ...
    def record(self, outcomes: Sequence[Outcome]) -> None: ...


class DeliveryObserver(Protocol):
    """Who hears what the senders did (metrics)."""

    def recorded(self, outcomes: Sequence[Outcome]) -> None: ...


Transaction = Callable[[], AbstractContextManager[OutboxQueues]]


class Dispatcher:
    """Claims due deliveries, sends them from a thread pool and records the answers."""

    def __init__(self, transaction: Transaction, sender: Sender, settings: DeliverySettings,
                 observer: DeliveryObserver | None = None,
                 decide_outcome: Callable[[Attempt, Answer], Outcome] | None = None) -> None:
        self.transaction = transaction
        self.sender = sender
        self.settings = settings
        self.observer = observer
        self.decide = decide_outcome or (lambda a, b: decide(a, b, settings.retry))
        self.lease_seconds = settings.lease_seconds
        self.wakeup = threading.Event()
        self.in_flight: set[Future[Outcome]] = set()
        self.unrecorded: list[Outcome] = []
        self.outages = 0

    def wake(self, _queued: int = 0) -> None:
        """New deliveries are queued: look now rather than at the next poll."""
        self.wakeup.set()

    def run(self, stop: threading.Event) -> None:
        """Send until `stop` is set; requests in flight are finished and recorded first."""
        with ThreadPoolExecutor(self.settings.workers, "webhook-send") as pool:
            while not stop.is_set():
                self.wakeup.clear()
                if not self._pass(pool):
                    self.wakeup.wait(self._pause())
            self._finish()

    def _pass(self, pool: ThreadPoolExecutor) -> bool:
        """Record what came back and claim what there is room for; False if nothing moved."""
        try:
            moved = self._exchange(pool)
        except Exception as exc:
            if not is_transient(exc):
                raise
            self.outages += 1
            log.warning("webhook senders paused; retrying: %s", first_line(exc))
            return False
        self.outages = 0
        return moved > 0

    def _pause(self) -> float:
        """How long to wait for a wake-up: the poll, or the backoff of an outage."""
        if self.outages:
            return backoff_seconds(self.outages, 0.5)
        return self.settings.poll_seconds

    def _exchange(self, pool: ThreadPoolExecutor | None) -> int:
        """In one transaction, record the answers that came back (and any a failed commit
        left) and claim due deliveries while there is room (none without a pool), then start
        sending them; return how many were recorded and claimed.

        Room is twice the senders: each sender finds its next delivery waiting when it
        finishes one (the wait is well inside the lease's margin)."""
        done = [future for future in self.in_flight if future.done()]
        self.in_flight.difference_update(done)
        self.unrecorded.extend(future.result() for future in done)
        outcomes, self.unrecorded = self.unrecorded, []
        room = 0 if pool is None else 2 * self.settings.workers - len(self.in_flight)
        if not outcomes and room <= 0:
            return 0
        try:
            with self.transaction() as outbox:
                if outcomes:
                    outbox.record(outcomes)
                claimed = outbox.claim(room, self.lease_seconds) if room > 0 else []
        except Exception:
            self.unrecorded = outcomes + self.unrecorded
            raise
        if outcomes and self.observer is not None:
            self.observer.recorded(outcomes)
        if pool is not None:
            self._start(pool, claimed)
        return len(outcomes) + len(claimed)

    def _start(self, pool: ThreadPoolExecutor, claimed: list[Attempt]) -> None:
        """Hand claimed deliveries to the senders; each answer wakes the loop."""
        for attempt in claimed:
            future = pool.submit(self._attempt, attempt)
            future.add_done_callback(lambda _done: self.wakeup.set())
            self.in_flight.add(future)

    def _attempt(self, attempt: Attempt) -> Outcome:
        """Send one delivery and decide what follows (never raises)."""
        try:
            answer = self.sender.send(attempt.url, attempt.headers(int(time.time())),
                                      attempt.payload.encode())
        except Exception as exc:  # a bug in sending must not lose the lease's bookkeeping
            log.exception("sending delivery %d failed", attempt.delivery_id)
            answer = Answer(None, f"{type(exc).__name__}: {exc}")
        return self.decide(attempt, answer)

    def _finish(self) -> None:
        """Wait for the requests in flight and record them (left to their leases if not)."""
        for future in list(self.in_flight):
            future.result()
        try:
            self._exchange(None)
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("answers not recorded before stopping (sent again later): %s", exc)
