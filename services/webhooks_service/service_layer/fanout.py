"""Queueing the event stream for the subscriptions: the `webhooks` process's projection.

The shared `StreamConsumer` hands each batch of events to a `FanoutBatch`: in one transaction
it locks the checkpoint, queues a delivery of every event after it to every subscription that
wants it (the outbox), and advances the checkpoint. A crash anywhere leads to a re-delivery
that the checkpoint turns into a no-op, so each event is queued once per subscription; the
senders (`delivery`) then work from the outbox, and retries never hold up the stream.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

log = logging.getLogger("taskstream.webhooks")

CHECKPOINT_NAME = "webhooks"


class OutboxWriter(Protocol):
    """The outbox inside one transaction, as the queueing sees it."""

    def lock_checkpoint(self, name: str) -> int: ...
    def advance_checkpoint(self, name: str, seq: int) -> None: ...
    def queue(self, payloads: list[str], replay_for: int | None = None) -> int: ...


Transaction = Callable[[], AbstractContextManager[OutboxWriter]]


class FanoutBatch:
    """One transaction: events after the checkpoint queued for their subscriptions."""

    def __init__(self, outbox: OutboxWriter, name: str = CHECKPOINT_NAME) -> None:
        self.outbox = outbox
        self.name = name
        self.checkpoint = outbox.lock_checkpoint(name)
        self.payloads: list[str] = []
        self.queued = 0

    def apply_encoded(self, payload: str, entry_id: str = "") -> None:
        """Take one event as the stream holds it; it is queued with the others at the end."""
        self.payloads.append(payload)

    def skip(self, seq: int, error: str) -> None:
        """An event that cannot be queued (not an event envelope) is passed over."""
        self.flush()
        log.error("event %d not queued for any webhook: %s", seq, error)

    def advance(self, seq: int) -> None:
        """Queue what was taken and move the checkpoint, in this transaction."""
        self.flush()
        self.outbox.advance_checkpoint(self.name, seq)
        self.checkpoint = seq

    def flush(self) -> None:
        """Queue the events taken so far (PostgreSQL reads them from their JSON)."""
        if self.payloads:
            payloads, self.payloads = self.payloads, []
            self.queued += self.outbox.queue(payloads)


class Fanout:
    """The consumer's projection: batches that queue deliveries, then wake the senders."""

    def __init__(self, transaction: Transaction, queued: Callable[[int], None]) -> None:
        self.transaction = transaction
        self.queued = queued

    @contextmanager
    def batch(self) -> Iterator[FanoutBatch]:
        """Open a transaction; after its commit, tell the senders how many were queued."""
        with self.transaction() as outbox:
            batch = FanoutBatch(outbox)
            yield batch
            batch.flush()
        if batch.queued:
            self.queued(batch.queued)
