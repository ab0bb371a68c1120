"""Replays: the events after a position queued again for one subscription, chunk by chunk.

The events are read from the stream, and what it no longer holds is asked back from the
publisher (the relay reads it from the event store): the way a consumer fills a gap, so no
service reads another's tables. Each chunk is queued and the replay's position advanced in
one transaction, so a crash neither skips nor repeats a chunk.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from services.webhooks_service.service_layer.views import ReplayView
from shared.logs import first_line
from shared.stream.bus import EventBus
from shared.stream.gaps import stored_run
from shared.stream.outages import backoff_seconds
from shared.stream.transient import is_transient

log = logging.getLogger("taskstream.webhooks")


class ReplayOutbox(Protocol):
    """The outbox inside one transaction, as replays see it."""

    def open_replays(self) -> list[ReplayView]: ...
    def lock_replay(self, replay_id: int) -> ReplayView | None: ...
    def queue(self, payloads: list[str], replay_for: int | None = None) -> int: ...
    def advance_replay(self, replay: ReplayView, seq: int) -> None: ...


Transaction = Callable[[], AbstractContextManager[ReplayOutbox]]


class Replayer:
    """Queues the events of open replays, a chunk at a time."""

    def __init__(self, transaction: Transaction, bus: EventBus, queued: Callable[[int], None],
                 chunk: int = 1000, poll_seconds: float = 1.0) -> None:
        self.transaction = transaction
        self.bus = bus
        self.queued = queued
        self.chunk = chunk
        self.poll_seconds = poll_seconds

    def run(self, stop: threading.Event) -> None:
        """Work on open replays until `stop` is set."""
        outages = 0
        while not stop.is_set():
            try:
                moved = self.step()
                outages = 0
            except Exception as exc:
                if not is_transient(exc):
                    raise
                outages += 1
                log.warning("replays paused; retrying: %s", first_line(exc))
                stop.wait(backoff_seconds(outages, self.poll_seconds))
                continue
            if not moved:
                stop.wait(self.poll_seconds)

    def step(self) -> int:
        """Queue one chunk of every open replay; return how many events were read."""
        with self.transaction() as outbox:
            open_replays = outbox.open_replays()
        return sum(self.advance(replay) for replay in open_replays)

    def advance(self, replay: ReplayView) -> int:
        """Queue the replay's next chunk (none while the relay puts missing events back)."""
        run = stored_run(self.bus, replay.next_seq, replay.through_seq, self.chunk)
        if not run:
            return 0
        with self.transaction() as outbox:
            locked = outbox.lock_replay(replay.id)
            if locked is None or locked.next_seq != replay.next_seq:
                return 0  # finished, deleted, or moved on by another process
            queued = outbox.queue([d.payload for d in run], replay_for=replay.subscription_id)
            outbox.advance_replay(locked, run[-1].seq)
        if any(d.backfilled for d in run):
            self.bus.release_backfill(run[-1].seq)
        if queued:
            self.queued(queued)
        return len(run)
