"""`StreamConsumer`: applies the event stream to one projection, exactly once in effect.

The consumer reads the stream through a consumer group in batches and hands each batch to a
`Projection`, whose `batch()` opens one database transaction: the events' effects and the new
checkpoint commit together, events at or below the checkpoint are skipped, and entries are
acknowledged (XACK) only after that commit. A crash anywhere therefore leads to a re-delivery
that the checkpoint turns into a no-op.

Around that core: a gap guard (`gaps`), the XAUTOCLAIM of entries a dead consumer left
pending, a dead-letter stream for an event that still fails after `max_deliveries` (recorded
by the batch's `skip` in the transaction that moves the checkpoint past it), an optional
`ApplierLock` so that one process applies at a time while others stand by, and a graceful
stop between batches. A transient error (`transient.is_transient`) is never blamed on an
event: the loop backs off (`outages`) and reads the same entries again; the deliveries that
met an outage do not count towards `max_deliveries`. A `ConsumerObserver` hears committed
batches, dead letters and a tick of the loop (metrics).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

import redis

from shared.logs import first_line
from shared.stream.applier_lock import ApplierLock, NoLock
from shared.stream.batch import Projection
from shared.stream.bus import EventBus
from shared.stream.entries import Delivery
from shared.stream.gaps import StreamGap
from shared.stream.isolation import apply_whole_else_each
from shared.stream.observer import ConsumerObserver, NoObserver
from shared.stream.options import ConsumerOptions
from shared.stream.outages import SparedDeliveries, backoff_seconds
from shared.stream.read_ahead import ReadAhead
from shared.stream.transaction import Committed, EventFailed, commit_deliveries, culprit_of
from shared.stream.transient import is_transient

log = logging.getLogger("taskstream.consumer")

Timed = tuple[Committed, float]  # what a transaction did, and how long it took


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
        self.spared = SparedDeliveries()
        self.through = 0  # the checkpoint the batch in hand has committed so far
        # Under load, the next batch is read while this one is applied and committed.
        self.read_ahead = ReadAhead[list[Delivery]]("stream-prefetch")

    # -- the loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; the batch in hand is finished first."""
        self.bus.ensure_group(self.options.group)
        try:
            while not stop.is_set():
                if delay := self._pass():
                    stop.wait(delay)
        finally:
            try:
                self.finish()
            finally:
                self.lock.release()
                self.active = False

    def _pass(self) -> float:
        """One pass of the loop; returns how long to wait before the next."""
        try:
            started = time.monotonic()
            self.observer.tick()
            if not self.ensure_active():
                return self.options.lock_poll_seconds
            handled = self.step()
            self.outages = 0
            if handled < 0:
                return self.options.retry_delay_seconds
            if 0 < handled < self.options.batch_size:  # linger: let the next batch gather
                return max(0.0, started + self.options.linger_ms / 1000 - time.monotonic())
            return 0.0
        except redis.ResponseError as exc:
            self._recover_group(exc)
        except Exception as exc:
            if not is_transient(exc):
                raise
            return self._back_off(exc)
        return 0.0

    def _back_off(self, exc: Exception) -> float:
        """Count a transient failure; return how long to wait (doubling, capped)."""
        self.outages += 1
        self.transient_failures += 1
        self.recheck_pending = True  # what the failed pass read is still ours, pending
        delay = backoff_seconds(self.outages, self.options.retry_delay_seconds)
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
        if claimed := self._claim_when_due():
            return claimed
        if pending := self._read_pending():
            return self.handle(pending)
        fresh = self._read_new()
        if fresh and self.options.prefetch:
            self.read_ahead.start(self.bus.read_new, *self._read_args())
        return self.handle(fresh)

    def _claim_when_due(self) -> int:
        """Claim and handle stale entries every `claim_interval_seconds`."""
        if self.clock() < self.next_claim:
            return 0
        self.next_claim = self.clock() + self.options.claim_interval_seconds
        return self.claim(self.options.claim_idle_ms)

    def _read_pending(self) -> list[Delivery]:
        """This consumer's unacknowledged entries, while some may be left."""
        if not self.recheck_pending:
            return []
        options = self.options
        pending = self.bus.read_pending(options.group, options.consumer, options.batch_size)
        self.recheck_pending = bool(pending)
        return pending

    def _read_new(self) -> list[Delivery]:
        """New entries: the batch read ahead during the last commit, else a fresh read."""
        if self.read_ahead.started:
            return self.read_ahead.take()
        return self.bus.read_new(*self._read_args())

    def _read_args(self) -> tuple[str, str, int, int]:
        options = self.options
        return options.group, options.consumer, options.batch_size, options.block_ms

    def finish(self) -> None:
        """Apply a batch still being read ahead (it is delivered to us), then stop reading."""
        if self.read_ahead.started and self.active:
            try:
                self.handle(self.read_ahead.take())
            except Exception as exc:  # left pending: the next applier takes it
                if not is_transient(exc):
                    raise
                log.warning("last batch not applied before stopping: %s", exc)
        self.read_ahead.close()

    def claim(self, min_idle_ms: int) -> int:
        """XAUTOCLAIM entries idle for `min_idle_ms` and handle them."""
        claimed = self.bus.claim_stale(
            self.options.group, self.options.consumer, min_idle_ms, self.options.batch_size
        )
        return self.handle(claimed) if claimed else 0

    def _recover_group(self, exc: redis.ResponseError) -> None:
        if "NOGROUP" not in str(exc):
            raise exc
        log.warning("consumer group %s is gone (Redis lost its data?); recreating it",
                    self.options.group)
        self.bus.ensure_group(self.options.group)
        self.recheck_pending = True

    # -- one batch ------------------------------------------------------------------------

    def handle(self, deliveries: Sequence[Delivery]) -> int:
        """Apply deliveries in one transaction, then ack; isolate a failure one by one.

        Returns how many were handled, or -1 when some must wait (a retry, a gap being
        filled from the store).
        """
        if not deliveries:
            return 0
        ordered = sorted({d.seq: d for d in deliveries}.values(), key=lambda d: d.seq)
        self.through = 0
        try:
            handled = apply_whole_else_each(
                ordered, self._commit_timed, self._failed_alone,
                f"batch {ordered[0].seq}..{ordered[-1].seq}", self._acknowledge)
        except Exception as exc:
            if is_transient(exc):  # an outage, not an event's fault: wait, then read again
                self.recheck_pending = True
                self.spared.met_outage(d for d in ordered if d.seq > self.through)
            raise
        return len(ordered) if handled else -1

    def commit(self, deliveries: Sequence[Delivery], skip: Mapping[int, str] | None = None
               ) -> Committed:
        """Apply unseen deliveries (gaps filled first) and advance the checkpoint, one txn."""
        return commit_deliveries(self.bus, self.projection, deliveries,
                                 self.options.batch_size, skip or {})

    def _commit_timed(self, deliveries: Sequence[Delivery]) -> Timed | None:
        """Commit, timed; None while a gap before them is being filled from the store."""
        started = self.clock()
        try:
            done = self.commit(deliveries)
        except StreamGap as gap:
            log.info("waiting for a gap to be filled: %s", gap)
            self.recheck_pending = True
            return None
        return done, self.clock() - started

    def _acknowledge(self, ordered: Sequence[Delivery], timed: Timed | None) -> bool:
        """XACK what the checkpoint now covers; False if the rest waits behind a gap."""
        if timed is None:
            return False
        done, seconds = timed
        self.through = done.through
        covered = [d.entry_id for d in ordered if d.seq <= done.through]
        self.bus.ack(self.options.group, covered)
        self.spared.forget(covered)
        self.observer.committed(done.applied, seconds)
        if len(covered) < len(ordered):
            self.recheck_pending = True
            return False
        return True

    def _failed_alone(self, delivery: Delivery, exc: Exception) -> bool:
        """Dead-letter the event to blame once it had its deliveries; else retry later."""
        if isinstance(exc, EventFailed) and self._dead_lettered(delivery, exc):
            return True
        return self._retry_later(delivery, exc)

    def _dead_lettered(self, delivery: Delivery, failure: EventFailed) -> bool:
        """Dead-letter the event to blame once `delivery` had its deliveries; True if it went."""
        if self.spared.attempts(delivery) < self.options.max_deliveries:
            return False
        culprit = culprit_of(failure, delivery)
        if culprit is None or not self.dead_letter(culprit, failure.cause):
            return False
        return culprit is delivery  # else an older event went: this one is tried again

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
        self.spared.forget([delivery.entry_id])
        self.dead_lettered += 1
        self.observer.dead_lettered(delivery.seq)
        log.error("dead-lettered event %d after %d deliveries: %s",
                  delivery.seq, delivery.deliveries, cause)
        return True

    def _retry_later(self, delivery: Delivery, exc: Exception) -> bool:
        log.warning("event %d (delivery %d) not applied, will retry: %s",
                    delivery.seq, delivery.deliveries, exc)
        self.recheck_pending = True
        return False
