"""A reusable, exactly-once consumer of the event stream.

The consumer reads the stream through a consumer group in batches and hands each batch to a
`Projection`, whose `batch()` opens one database transaction: the events' effects and the new
checkpoint commit together, events at or below the checkpoint are skipped, and entries are
acknowledged (XACK) only after that commit. A crash anywhere therefore leads to a re-delivery
that the checkpoint turns into a no-op.

Around that core: a gap guard (missing seqs between the checkpoint and a delivered entry are
fetched with `bus.range` first, so a consumer that takes over can never skip events, and what
the stream no longer holds is asked back from the publisher, which reads it from the event
store: `bus.backfill`), the
XAUTOCLAIM of entries a dead consumer left pending, a dead-letter stream for an event that
still fails after `max_deliveries`, an optional `ApplierLock` so that one process applies at a
time while others stand by, and a graceful stop between batches. A transient error (the
database or Redis unreachable, a deadlock, a serialization failure, a lock timeout: see
`is_transient`) is never blamed on an event: the loop backs off, doubling up to
`MAX_BACKOFF_SECONDS`, and reads the same entries again; the deliveries that met an outage do
not count towards `max_deliveries`.

Optional hooks: a batch with `skip(seq, error)` records a dead-lettered event in the same
transaction that moves the checkpoint past it (so a later retry can tell whether its effect is
missing); a batch with `apply_encoded(payload, entry_id)` takes the JSON undecoded; a
`ConsumerObserver` hears committed batches, dead letters and a tick of the loop (metrics).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import redis
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from shared.bus import Delivery, EventBus
from shared.events import EventEnvelope, decode
from shared.logs import first_line

log = logging.getLogger("taskstream.consumer")

# SQLSTATEs a retry gets past (besides class 08, connection exceptions): serialization
# failure, deadlock, lock timeout, too many connections, the server shutting down or starting.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "53300", "57P01", "57P02", "57P03"})
MAX_BACKOFF_SECONDS = 10.0


def is_transient(exc: BaseException) -> bool:
    """True for an outage or a conflict that a retry gets past: never the event's fault."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    code = getattr(exc.orig, "pgcode", None)
    if code is None:  # no answer from the server: the connection broke or was refused
        return exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))
    return code.startswith("08") or code in TRANSIENT_SQLSTATES


class Batch(Protocol):
    """One open transaction of a projection."""

    checkpoint: int

    def apply(self, event: EventEnvelope) -> None:
        """Apply one event's effect inside the transaction."""

    def advance(self, seq: int) -> None:
        """Set the checkpoint that commits with the effects."""


class SkipRecorder(Protocol):
    """A batch that can also record an event it skips (optional, see `StreamConsumer.commit`)."""

    def skip(self, seq: int, error: str) -> None:
        """Record, in the batch's transaction, that the event `seq` was skipped."""


class ConsumerObserver(Protocol):
    """Hooks for metrics: what the consumer did, and a regular tick of its loop."""

    def committed(self, applied: int, seconds: float) -> None:
        """A batch of `applied` events committed in `seconds`."""

    def dead_lettered(self, seq: int) -> None:
        """The event `seq` went to the dead-letter stream."""

    def tick(self) -> None:
        """Called on every pass of the loop (throttle inside)."""


class NoObserver:
    """The observer of a consumer nobody watches."""

    def committed(self, applied: int, seconds: float) -> None:
        """Nothing to record."""

    def dead_lettered(self, seq: int) -> None:
        """Nothing to record."""

    def tick(self) -> None:
        """Nothing to refresh."""


class Observers:
    """Several observers heard as one."""

    def __init__(self, *observers: ConsumerObserver) -> None:
        self.observers = observers

    def committed(self, applied: int, seconds: float) -> None:
        """Tell each."""
        for observer in self.observers:
            observer.committed(applied, seconds)

    def dead_lettered(self, seq: int) -> None:
        """Tell each."""
        for observer in self.observers:
            observer.dead_lettered(seq)

    def tick(self) -> None:
        """Tick each."""
        for observer in self.observers:
            observer.tick()


class Projection(Protocol):
    """Something that applies events and keeps its checkpoint with the effect."""

    def batch(self) -> AbstractContextManager[Batch]:
        """Open a transaction, read the checkpoint (locked); commit on a clean exit."""


class ApplierLock(Protocol):
    """Who may apply: one holder at a time; the others stand by."""

    def acquire(self) -> bool:
        """Try to become the holder; True if this process holds the lock now."""

    def held(self) -> bool:
        """True while this process still holds the lock."""

    def release(self) -> None:
        """Give the lock up."""


class NoLock:
    """The lock of a consumer that is always allowed to apply."""

    def acquire(self) -> bool:
        """Always granted."""
        return True

    def held(self) -> bool:
        """Always held."""
        return True

    def release(self) -> None:
        """Nothing to release."""


class PostgresAdvisoryLock:
    """A session-level PostgreSQL advisory lock on a connection of its own.

    PostgreSQL releases it when that session ends, so a killed holder frees it at once.
    """

    def __init__(self, url: str, name: str) -> None:
        self.engine = create_engine(url, poolclass=pool.NullPool)
        self.key = zlib.crc32(name.encode())
        self.connection: Connection | None = None

    def acquire(self) -> bool:
        """Try `pg_try_advisory_lock` on the lock's own session."""
        if self.connection is None:
            self.connection = self.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            )
        try:
            got = self.connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
            ).scalar()
        except Exception:
            self._drop()
            raise
        return bool(got)

    def held(self) -> bool:
        """Check that the session holding the lock is still alive."""
        if self.connection is None:
            return False
        try:
            self.connection.execute(text("SELECT 1"))
        except Exception:  # the session, and with it the lock, is gone
            self._drop()
            return False
        return True

    def release(self) -> None:
        """End the session, which releases the lock."""
        self._drop()

    def _drop(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception as exc:  # closing a dead connection may fail; it is gone anyway
                log.debug("closing lock connection: %s", exc)
            self.connection = None


class EventFailed(Exception):
    """Applying (or decoding) the event with `seq` raised `cause`."""

    def __init__(self, seq: int, cause: Exception, delivery: Delivery | None = None) -> None:
        super().__init__(f"event {seq} failed: {cause!r}")
        self.seq = seq
        self.cause = cause
        self.delivery = delivery


class StreamGap(RuntimeError):
    """Events after the checkpoint are in neither the stream nor the backfill (yet)."""


@dataclass(frozen=True)
class Committed:
    """What one transaction did: events applied, and the checkpoint it committed."""

    applied: int
    through: int


def default_consumer_name() -> str:
    """A consumer name unique to this process: `<host>-<pid>`."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class ConsumerOptions:
    """How a consumer reads, retries and gives up."""

    group: str
    consumer: str
    batch_size: int = 500
    block_ms: int = 1000
    claim_idle_ms: int = 30_000
    claim_interval_seconds: float = 5.0
    max_deliveries: int = 5
    lock_poll_seconds: float = 1.0
    retry_delay_seconds: float = 0.5
    prefetch: bool = True


class StreamConsumer:
    """Applies the stream to one projection, exactly once in effect."""

    def __init__(
        self, bus: EventBus, projection: Projection, options: ConsumerOptions,
        lock: ApplierLock | None = None, clock: Callable[[], float] = time.monotonic,
        observer: ConsumerObserver | None = None,
    ) -> None:
        self.bus = bus
        self.projection = projection
        self.options = options
        self.lock = lock or NoLock()
        self.observer = observer or NoObserver()
        self.clock = clock
        self.active = False
        self.recheck_pending = True
        self.next_claim = 0.0
        self.dead_lettered = 0
        self.outages = 0  # transient failures in a row (the backoff grows with them)
        self.transient_failures = 0  # transient failures waited out since the start
        self.spared: dict[str, int] = {}  # entry id -> its deliveries that met an outage
        self.prefetched: Future[list[Delivery]] | None = None
        self.executor: ThreadPoolExecutor | None = None

    # -- the loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; the batch in hand is finished first."""
        self.bus.ensure_group(self.options.group)
        try:
            while not stop.is_set():
                try:
                    self.observer.tick()
                    if not self.ensure_active():
                        stop.wait(self.options.lock_poll_seconds)
                        continue
                    if self.step() < 0:
                        stop.wait(self.options.retry_delay_seconds)
                    self.outages = 0
                except redis.ResponseError as exc:
                    self._recover_group(exc)
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    stop.wait(self._back_off(exc))
        finally:
            try:
                self.finish()
            finally:
                self.lock.release()
                self.active = False

    def _back_off(self, exc: Exception) -> float:
        """Count a transient failure; return how long to wait (doubling, capped)."""
        self.outages += 1
        self.transient_failures += 1
        self.recheck_pending = True  # what the failed pass read is still ours, pending
        base = max(0.1, self.options.retry_delay_seconds)
        delay = min(MAX_BACKOFF_SECONDS, base * 2 ** min(self.outages - 1, 8))
        log.warning("consumer paused (nothing is dead-lettered for this); retrying in %.1fs: %s",
                    delay, first_line(exc))
        return delay

    def ensure_active(self) -> bool:
        """Hold the applier lock, taking over (and claiming leftovers) when it is acquired."""
        if self.active and self.lock.held():
            return True
        if self.active:
            log.warning("lost the applier lock of group %s; standing by", self.options.group)
            self.active = False
        if not self.lock.acquire():
            return False
        log.info("%s is now the active applier of group %s",
                 self.options.consumer, self.options.group)
        self.active, self.recheck_pending = True, True
        self.claim(min_idle_ms=0)  # whatever others left pending belongs to a dead applier
        return True

    def step(self) -> int:
        """One pass: claim stale entries when due, own pending ones, else new ones.

        Returns the number of entries handled, or -1 when something failed and a retry
        should wait a little.
        """
        if self.clock() >= self.next_claim:
            self.next_claim = self.clock() + self.options.claim_interval_seconds
            handled = self.claim(self.options.claim_idle_ms)
            if handled:
                return handled
        if self.recheck_pending:
            pending = self.bus.read_pending(
                self.options.group, self.options.consumer, self.options.batch_size
            )
            if pending:
                return self.handle(pending)
            self.recheck_pending = False
        fresh = self._read_new()
        if fresh and self.options.prefetch:
            # Under load, read the next batch while this one is applied and committed.
            self.prefetched = self._reader().submit(self.bus.read_new, *self._read_args())
        return self.handle(fresh)

    def _read_new(self) -> list[Delivery]:
        """New entries: the batch prefetched during the last commit, else a fresh read."""
        if self.prefetched is not None:
            future, self.prefetched = self.prefetched, None
            return future.result()
        return self.bus.read_new(*self._read_args())

    def _read_args(self) -> tuple[str, str, int, int]:
        options = self.options
        return options.group, options.consumer, options.batch_size, options.block_ms

    def _reader(self) -> ThreadPoolExecutor:
        if self.executor is None:
            self.executor = ThreadPoolExecutor(1, thread_name_prefix="stream-prefetch")
        return self.executor

    def finish(self) -> None:
        """Apply a batch still being prefetched (it is delivered to us), then stop reading."""
        if self.prefetched is not None and self.active:
            try:
                self.handle(self._read_new())
            except Exception as exc:  # left pending: the next applier takes it
                if not is_transient(exc):
                    raise
                log.warning("last batch not applied before stopping: %s", exc)
        if self.executor is not None:
            self.executor.shutdown(wait=True)
            self.executor = None

    def claim(self, min_idle_ms: int) -> int:
        """XAUTOCLAIM entries idle for `min_idle_ms` and handle them."""
        claimed = self.bus.claim_stale(
            self.options.group, self.options.consumer, min_idle_ms, self.options.batch_size
        )
        return self.handle(claimed) if claimed else 0

    # -- one batch ------------------------------------------------------------------------

    def handle(self, deliveries: Sequence[Delivery]) -> int:
        """Apply deliveries in one transaction, then ack; isolate a failure one by one.

        Returns how many were handled, or -1 when some must wait (a retry, a gap being
        filled from the store).
        """
        if not deliveries:
            return 0
        ordered = sorted({d.seq: d for d in deliveries}.values(), key=lambda d: d.seq)
        started = self.clock()
        try:
            done = self.commit(ordered)
        except StreamGap as exc:
            return self._wait_for_backfill(exc)
        except Exception as exc:
            if is_transient(exc):  # an outage, not an event's fault: wait, then read again
                self._outage(ordered)
                raise
            log.warning("batch %d..%d failed (%s); applying one by one",
                        ordered[0].seq, ordered[-1].seq, exc)
            return self.handle_one_by_one(ordered)
        return self._acknowledge(ordered, done, started)

    def handle_one_by_one(self, ordered: Sequence[Delivery]) -> int:
        """Apply each delivery in its own transaction; dead-letter a poison one."""
        for index, delivery in enumerate(ordered):
            started = self.clock()
            try:
                done = self.commit([delivery])
            except StreamGap as exc:
                return self._wait_for_backfill(exc)
            except EventFailed as exc:
                culprit = _culprit(exc, delivery)
                if culprit is None or self._attempts(delivery) < self.options.max_deliveries:
                    return self._retry_later(delivery, exc)
                if not self.dead_letter(culprit, exc.cause) or culprit is not delivery:
                    return self._retry_later(delivery, exc)
                continue
            except Exception as exc:
                if is_transient(exc):
                    self._outage(ordered[index:])
                    raise
                return self._retry_later(delivery, exc)
            if self._acknowledge([delivery], done, started) < 0:
                return -1
        return len(ordered)

    def _acknowledge(self, ordered: Sequence[Delivery], done: Committed, started: float) -> int:
        """XACK what the checkpoint now covers; the rest waits behind a gap being filled."""
        covered = [d.entry_id for d in ordered if d.seq <= done.through]
        self.bus.ack(self.options.group, covered)
        if self.spared:
            for entry_id in covered:
                self.spared.pop(entry_id, None)
        self.observer.committed(done.applied, self.clock() - started)
        if len(covered) < len(ordered):
            self.recheck_pending = True
            return -1
        return len(ordered)

    def commit(self, deliveries: Sequence[Delivery], skip: Mapping[int, str] | None = None
               ) -> Committed:
        """Apply unseen deliveries (gaps filled first) and advance the checkpoint, one txn.

        Events in `skip` (seq → error) are passed over; a batch that can record skips
        (`SkipRecorder`) records them in the same transaction. While a gap is being filled
        from the store, only the events before the first one still missing are applied. A
        failure is reported as `EventFailed` naming the event that caused it, when known.
        """
        skip = skip or {}
        applied: list[int] = []
        try:
            with self.projection.batch() as batch:
                fresh = [d for d in deliveries if d.seq > batch.checkpoint]
                if not fresh:
                    return Committed(0, batch.checkpoint)
                run = self.fill_gaps(batch.checkpoint, fresh)
                for delivery in run:
                    if delivery.seq in skip:
                        recorder = getattr(batch, "skip", None)
                        if recorder is not None:
                            recorder(delivery.seq, skip[delivery.seq])
                        continue
                    applied.append(delivery.seq)
                    _apply(batch, delivery)
                batch.advance(run[-1].seq)
        except (EventFailed, StreamGap):
            raise
        except Exception as exc:  # failed at commit: only a lone event can be blamed
            if len(applied) == 1 and not is_transient(exc):
                raise EventFailed(applied[0], exc) from exc
            raise
        if any(d.backfilled for d in run):
            self.bus.release_backfill(run[-1].seq)
        return Committed(len(applied), run[-1].seq)

    def fill_gaps(self, checkpoint: int, fresh: Sequence[Delivery]) -> list[Delivery]:
        """The events from `checkpoint + 1` on, in order: from the deliveries, the stream, or
        else the events put back from the store (requested when missing). Ends before the
        first event none of them has yet; raises StreamGap if that is the very first."""
        last = min(fresh[-1].seq, checkpoint + max(len(fresh), self.options.batch_size))
        if len(fresh) == fresh[-1].seq - checkpoint:  # no gap
            return list(fresh)
        found = {d.seq: d for d in self.bus.range(checkpoint + 1, last, last - checkpoint)}
        found.update({d.seq: d for d in fresh if d.seq <= last})
        missing = [seq for seq in range(checkpoint + 1, last + 1) if seq not in found]
        if missing:
            put_back = self.bus.backfill(missing[0], missing[-1], self.options.batch_size)
            found.update({d.seq: d for d in put_back if d.seq not in found})
        run: list[Delivery] = []
        while (following := found.get(checkpoint + len(run) + 1)) is not None:
            run.append(following)
        if not run:
            raise StreamGap(f"events from {checkpoint + 1} on are in neither the stream nor "
                            "the backfill yet; asked the publisher to put them back from the "
                            "event store")
        return run

    def dead_letter(self, delivery: Delivery, cause: Exception) -> bool:
        """Skip the event past the checkpoint, then move it to the dead-letter stream."""
        error = f"{type(cause).__name__}: {cause}"
        try:
            done = self.commit([delivery], skip={delivery.seq: error})
        except Exception as exc:  # an earlier event failed: not this one's fault
            if is_transient(exc):
                raise
            log.warning("could not skip event %d: %s", delivery.seq, exc)
            return False
        if done.through < delivery.seq:  # a gap before it is not filled yet
            return False
        self.bus.dead_letter(self.options.group, delivery, error)
        self.spared.pop(delivery.entry_id, None)
        self.dead_lettered += 1
        self.observer.dead_lettered(delivery.seq)
        log.error("dead-lettered event %d after %d deliveries: %s",
                  delivery.seq, delivery.deliveries, cause)
        return True

    def _outage(self, deliveries: Sequence[Delivery]) -> None:
        """These deliveries met an outage: read them again, and do not count that delivery."""
        self.recheck_pending = True
        for delivery in deliveries:
            self.spared[delivery.entry_id] = self.spared.get(delivery.entry_id, 0) + 1

    def _attempts(self, delivery: Delivery) -> int:
        """The deliveries of an entry that did not end in an outage (as far as we saw)."""
        return delivery.deliveries - self.spared.get(delivery.entry_id, 0)

    def _wait_for_backfill(self, gap: StreamGap) -> int:
        log.info("waiting for a gap to be filled: %s", gap)
        self.recheck_pending = True
        return -1

    def _retry_later(self, delivery: Delivery, exc: Exception) -> int:
        log.warning("event %d (delivery %d) not applied, will retry: %s",
                    delivery.seq, delivery.deliveries, exc)
        self.recheck_pending = True
        return -1

    def _recover_group(self, exc: redis.ResponseError) -> None:
        if "NOGROUP" not in str(exc):
            raise exc
        log.warning("consumer group %s is gone (Redis lost its data?); recreating it",
                    self.options.group)
        self.bus.ensure_group(self.options.group)
        self.recheck_pending = True


def _apply(batch: Batch, delivery: Delivery) -> None:
    """Apply one entry, blaming it for any failure.

    A batch with `apply_encoded(payload, entry_id)` takes the payload as it is (it may
    skip building an envelope); any other gets the decoded envelope.
    """
    try:
        encoded = getattr(batch, "apply_encoded", None)
        if encoded is not None:
            encoded(delivery.payload, delivery.entry_id)
        else:
            batch.apply(decode(delivery.payload, delivery.entry_id))
    except Exception as exc:
        if is_transient(exc):
            raise  # an outage or a conflict: retried, never blamed on the event
        raise EventFailed(delivery.seq, exc, delivery) from exc


def _culprit(failure: EventFailed, delivery: Delivery) -> Delivery | None:
    """The delivery to blame for a failure while handling `delivery`, if this consumer may.

    An older stream entry (pending for another consumer) fails on its own when claimed; an
    event put back from the store has no delivery count of its own, so it is blamed after
    the deliveries of the entry waiting behind it.
    """
    if failure.seq == delivery.seq:
        return delivery
    found = failure.delivery
    if found is None or not found.backfilled:
        return None
    return Delivery(found.entry_id, found.payload, delivery.deliveries, backfilled=True)
