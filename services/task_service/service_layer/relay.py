"""The relay: publishes committed events from the event store to the Redis stream, in seq order.

Before each pass it numbers the committed events that have no seq yet (`Sequencer`), so the
log advances even when the commands that wrote them died before numbering them.

The stream is its own bookkeeping: entry ids are `<seq>-0`, so on every pass the relay reads
the stream's head and publishes the store's events above it. A crash between XADD and
anything else loses nothing and duplicates nothing (Redis refuses an id at or below the head).
If Redis lost the stream, or a prefix of it, the relay notices and republishes from the store.
A consumer that meets a gap (its group made after a trim) asks for the missing events; the
relay puts them back from the store beside the stream (`RedisStreamBus.offer_backfill`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import time
from collections.abc import Iterator

import psycopg2
import redis
from prometheus_client import Counter, Gauge
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from services.task_service.adapters.listener import Listener
from services.task_service.adapters.relay_status import write_status, write_stopped
from services.task_service.adapters.sequencer import Sequencer
from services.task_service.adapters.stored_events import StoredEvents
from services.task_service.config import RelayConfig
from shared.logs import first_line
from shared.stream.entries import Encoded
from shared.stream.read_ahead import chunks_after
from shared.stream.redis_bus import RedisStreamBus, StreamHead

log = logging.getLogger("taskstream.relay")

MAX_BACKOFF = 10.0
TRANSIENT = (DBAPIError, psycopg2.Error, redis.RedisError, OSError)

RELAY_LAG = Gauge("taskstream_relay_lag_events",
                  "Committed events not yet on the stream (store head - stream head)",
                  multiprocess_mode="max")
RELAY_PUBLISHED = Counter("taskstream_relay_published_total",
                          "Events the relay added to the stream")
RELAY_BACKFILLED = Counter("taskstream_relay_backfilled_total",
                           "Events the relay put back for consumers that met a gap")
BACKFILL_REQUESTS_PER_PASS = 10
BACKFILL_EVENTS_PER_REQUEST = 10_000  # a consumer asks for more in its next request


class Relay:
    """Follows the event store by seq and publishes to the stream."""

    def __init__(self, engine: Engine, bus: RedisStreamBus, config: RelayConfig) -> None:
        self.engine = engine
        self.events = StoredEvents(engine)
        self.sequencer = Sequencer(engine)
        self.bus = bus
        self.config = config
        self.stopping = False
        self.failures = 0  # passes failed in a row (PostgreSQL or Redis unavailable)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        self.listener = Listener(engine, self.wake_r)

    @property
    def streams_label(self) -> str:
        """How the log names where it publishes."""
        return self.bus.stream

    def stop(self) -> None:
        """Ask the loop to finish (safe from a signal handler)."""
        self.stopping = True
        with contextlib.suppress(BlockingIOError):
            os.write(self.wake_w, b"x")

    def stream_head(self) -> int:
        """The stream's head seq; resets the stream first if it lost any entry before it."""
        head = self.bus.read_head()
        if head is None:
            return 0
        if self._is_whole(head):
            return head.seq
        log.warning("Stream %s lost entries below seq %d (Redis lost data); republishing "
                    "everything from the event store", self.bus.stream, head.seq)
        self.bus.drop()
        return 0

    def _is_whole(self, head: StreamHead) -> bool:
        # Store seqs are contiguous from 1, so a whole stream has received exactly `head` ids.
        if head.added is not None:
            return head.added >= head.seq
        return bool(self.config.maxlen) or head.length >= head.seq

    def publish_pending(self) -> int:
        """Number the committed events that have no seq yet unless a step is running (their
        writers number them too, but may have died first), then publish every event above
        the stream's head; return how many."""
        self.sequencer.help_along()
        head = self.stream_head()
        published = 0
        for entries in self._batches(head):
            added = self.bus.publish_encoded(entries)
            RELAY_PUBLISHED.inc(added)
            self.trim()  # a long backlog stays bounded while it is published
            head, published = entries[-1][0], published + added
            if self.stopping:
                break
        self.trim()  # what the groups acknowledged since
        # Unless it stopped early, the pass read until a short batch: the store's head then.
        self.report(head, None if self.stopping else head)
        return published

    def serve_backfill(self) -> int:
        """Put the events consumers asked for (a gap) back from the store; return how many."""
        served = 0
        for first, asked_last in self.bus.backfill_requests(BACKFILL_REQUESTS_PER_PASS):
            after, last = first - 1, min(asked_last, first + BACKFILL_EVENTS_PER_REQUEST - 1)
            while after < last and (entries := self._read_until(after, last)):
                self.bus.offer_backfill(entries)
                after, served = entries[-1][0], served + len(entries)
        RELAY_BACKFILLED.inc(served)
        return served

    def _read_until(self, after: int, last: int) -> list[Encoded]:
        return self.events.read(after, min(self.config.batch_size, last - after))

    def trim(self) -> None:
        """Trim what every consumer group has acknowledged, when trimming is on."""
        if self.config.maxlen:
            self.bus.trim(self.config.maxlen)

    def _batches(self, after: int) -> Iterator[list[Encoded]]:
        """Batches of encoded events above `after`; the next is read while this one is sent."""
        return chunks_after(self._read, after, "relay-read", full=self.config.batch_size)

    def _read(self, after: int) -> list[Encoded]:
        return self.events.read(after, self.config.batch_size)

    def report(self, stream_head: int, stored: int | None = None) -> None:
        """Record the lag (store head - stream head) for `projections status`; `stored`, the
        store's head when the caller knows it (else it is read)."""
        stored = self.events.head() if stored is None else stored
        lag = max(0, stored - stream_head)
        RELAY_LAG.set(lag)
        write_status(self.bus.client, self.config.namespace, stored, stream_head, lag)

    def run(self) -> None:
        """Publish, then sleep until NOTIFY or the poll interval; survive outages."""
        log.info("Relay started: %s -> %s", self.engine.url.render_as_string(True),
                 self.streams_label)
        while not self.stopping:
            try:
                started = time.monotonic()
                if 0 < self._pass() < self.config.batch_size:
                    self._linger(started)
                self.listener.wait(self.config.poll_seconds)
            except TRANSIENT as exc:
                self.failures += 1
                self._back_off(exc, self.failures)
        self.listener.close()
        with contextlib.suppress(redis.RedisError):
            write_stopped(self.bus.client, self.config.namespace)
        log.info("Relay stopped")

    def _linger(self, started: float) -> None:
        """After a pass that published less than a batch, let the next gather more: no pass
        starts within `linger_ms` of the last one (a stop still wakes it)."""
        if (remaining := started + self.config.linger_ms / 1000 - time.monotonic()) > 0:
            select.select([self.wake_r], [], [], remaining)

    def _pass(self) -> int:
        """Publish what is new and serve the backfill requests, logging what was done; how
        many events it published."""
        if published := self.publish_pending():
            log.info("Published %d events to %s", published, self.streams_label)
        if backfilled := self.serve_backfill():
            log.info("Put %d events back for consumers that met a gap", backfilled)
        if self.failures:
            log.info("Relay recovered after %d failed attempts", self.failures)
            self.failures = 0
        return published

    def _back_off(self, exc: BaseException, failures: int) -> None:
        delay = min(MAX_BACKOFF, 0.25 * 2 ** min(failures, 8))
        what = "Redis" if isinstance(exc, redis.RedisError) else "PostgreSQL"
        log.warning("Relay: %s unavailable (%s); retrying in %.1fs", what, first_line(exc), delay)
        self.listener.close()
        select.select([self.wake_r], [], [], delay)
