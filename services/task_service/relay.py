"""The relay: publishes committed events from the event store to the Redis stream, in seq order.

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
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from types import FrameType
from typing import Any

import psycopg2
import redis
from prometheus_client import Counter, Gauge
from sqlalchemy import Connection, create_engine, pool
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from services.task_service.adapters.event_store import (
    NOTIFY_CHANNEL,
    read_encoded_after,
    store_head,
)
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


def status_key(namespace: str) -> str:
    """The Redis hash where the relay keeps `store_head`, `stream_head`, `lag`, `updated_at`."""
    return f"{namespace}:relay:status"


def read_status(client: redis.Redis, namespace: str) -> dict[str, Any]:
    """The relay's last reported status (empty if it never ran)."""
    raw = client.hgetall(status_key(namespace))
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes)
                                                           else v) for k, v in raw.items()}


class Listener:
    """A dedicated PostgreSQL connection LISTENing for appended events."""

    def __init__(self, engine: Engine, wake_fd: int) -> None:
        self.engine = create_engine(engine.url, poolclass=pool.NullPool)
        self.wake_fd = wake_fd
        self.pooled: Any = None  # keeps the connection open: dropping it would close it
        self.connection: Any = None

    def connect(self) -> None:
        """Open the connection and LISTEN."""
        self.close()
        self.pooled = self.engine.raw_connection()
        self.connection = self.pooled.driver_connection
        self.connection.autocommit = True
        with self.connection.cursor() as cursor:
            cursor.execute(f"LISTEN {NOTIFY_CHANNEL}")

    def wait(self, timeout: float) -> None:
        """Return on a notification, a wake-up byte, or after `timeout` seconds."""
        if self.connection is None:
            self.connect()
        readable, _, _ = select.select([self.connection, self.wake_fd], [], [], timeout)
        if self.connection in readable:
            self.connection.poll()
            self.connection.notifies.clear()

    def close(self) -> None:
        """Close the connection, if open."""
        if self.connection is not None:
            with contextlib.suppress(psycopg2.Error):
                self.pooled.close()
            self.pooled = self.connection = None


@dataclass
class RelayConfig:
    """How the relay batches, waits and trims."""

    batch_size: int = 1000
    poll_seconds: float = 1.0
    # Keep at least this many entries and trim only what every consumer group has
    # acknowledged (an entry a group still needs is never removed); 0 = never trim.
    maxlen: int = 0
    namespace: str = "taskstream"


class Relay:
    """Follows the event store by seq and publishes to the stream."""

    def __init__(self, engine: Engine, bus: RedisStreamBus, config: RelayConfig) -> None:
        self.engine = engine
        self.bus = bus
        self.config = config
        self.stopping = False
        self.failures = 0  # passes failed in a row (PostgreSQL or Redis unavailable)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        self.listener = Listener(engine, self.wake_r)

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
        """Publish every committed event above the stream's head; return how many."""
        head = self.stream_head()
        published = 0
        with self.engine.connect() as connection:
            for entries in self._batches(connection, head):
                added = self.bus.publish_encoded(entries)
                RELAY_PUBLISHED.inc(added)
                self.trim()  # a long backlog stays bounded while it is published
                head, published = entries[-1][0], published + added
                if self.stopping:
                    break
        self.trim()  # what the groups acknowledged since
        self.report(head)
        return published

    def serve_backfill(self) -> int:
        """Put the events consumers asked for (a gap) back from the store; return how many."""
        served = 0
        requests = self.bus.backfill_requests(BACKFILL_REQUESTS_PER_PASS)
        with self.engine.connect() as connection:
            for first, asked_last in requests:
                after, last = first - 1, min(asked_last, first + BACKFILL_EVENTS_PER_REQUEST - 1)
                while after < last and (entries := self._read_until(connection, after, last)):
                    self.bus.offer_backfill(entries)
                    after, served = entries[-1][0], served + len(entries)
        RELAY_BACKFILLED.inc(served)
        return served

    def _read_until(self, connection: Connection, after: int, last: int) -> list[Encoded]:
        return read_encoded_after(connection, after, min(self.config.batch_size, last - after))

    def trim(self) -> None:
        """Trim what every consumer group has acknowledged, when trimming is on."""
        if self.config.maxlen:
            self.bus.trim(self.config.maxlen)

    def _batches(self, connection: Connection, after: int) -> Iterator[list[Encoded]]:
        """Batches of encoded events above `after`; the next is read while this one is sent."""
        return chunks_after(partial(self._read, connection), after, "relay-read")

    def _read(self, connection: Connection, after: int) -> list[Encoded]:
        entries = read_encoded_after(connection, after, self.config.batch_size)
        connection.rollback()  # no snapshot held open between batches
        return entries

    def report(self, stream_head: int) -> None:
        """Record the lag (store head - stream head) for `projections status`."""
        with self.engine.connect() as connection:
            stored = store_head(connection)
        lag = max(0, stored - stream_head)
        RELAY_LAG.set(lag)
        self.bus.client.hset(status_key(self.config.namespace), mapping={
            "store_head": stored, "stream_head": stream_head, "lag": lag,
            "updated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        })

    def run(self) -> None:
        """Publish, then sleep until NOTIFY or the poll interval; survive outages."""
        log.info("Relay started: %s -> %s", self.engine.url.render_as_string(True),
                 self.bus.stream)
        while not self.stopping:
            try:
                published = self.publish_pending()
                if published:
                    log.info("Published %d events to %s", published, self.bus.stream)
                if backfilled := self.serve_backfill():
                    log.info("Put %d events back for consumers that met a gap", backfilled)
                if self.failures:
                    log.info("Relay recovered after %d failed attempts", self.failures)
                    self.failures = 0
                self.listener.wait(self.config.poll_seconds)
            except TRANSIENT as exc:
                self.failures += 1
                self._back_off(exc, self.failures)
        self.listener.close()
        log.info("Relay stopped")

    def _back_off(self, exc: BaseException, failures: int) -> None:
        delay = min(MAX_BACKOFF, 0.25 * 2 ** min(failures, 8))
        what = "Redis" if isinstance(exc, redis.RedisError) else "PostgreSQL"
        log.warning("Relay: %s unavailable (%s); retrying in %.1fs", what, first_line(exc), delay)
        self.listener.close()
        select.select([self.wake_r], [], [], delay)


def install_signal_handlers(relay: Relay) -> None:
    """Stop cleanly on SIGTERM and SIGINT."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("Relay received signal %d; stopping", signum)
        relay.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handle)

