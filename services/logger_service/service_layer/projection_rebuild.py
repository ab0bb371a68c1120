"""Rebuild and verify the logger projection from the event store, beside the live tables.

**Rebuild** replays the event store (PostgreSQL, never the stream, which may be trimmed) into
a shadow schema with its own checkpoint, committing every chunk with that checkpoint, so a
killed rebuild resumes where it stopped. Once it is close to the head it swaps, in one
transaction that first locks the live checkpoint row — the lock every projector batch takes
first — so the projector is paused exactly between two batches: the transaction applies the
few events still missing from the shadow (up to at least the live checkpoint), moves the
shadow tables in place of the live ones and sets the live checkpoint to the shadow's. The
projector's next batch then sees the new tables and checkpoint and skips what they already
hold: no event is lost or applied twice. A session advisory lock keeps a second rebuild out.

**Verify** builds a fresh copy the same way (in another schema), brings it to the live
checkpoint under that same row lock and compares every table row by row (natural keys and
values, surrogate ids aside).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from sqlalchemy.engine import Connection, Engine

from services.logger_service.adapters import shadow
from services.logger_service.adapters.projection_store import (
    SqlProjectionStore,
    read_checkpoint,
    savepoint,
)
from services.logger_service.service_layer import partition_catch_up as catch_up
from services.logger_service.service_layer.projection import (
    PROJECTION_NAME,
    DateCache,
    LoggerBatch,
)
from services.progress import Progress, ProgressReport
from shared.stream.applier_lock import ApplierLock
from shared.stream.entries import Encoded, entry_id_of
from shared.stream.isolation import apply_whole_else_each
from shared.stream.partitions import Partitioning
from shared.stream.read_ahead import chunks_after

log = logging.getLogger("taskstream.rebuild")

REBUILD_SCHEMA = "logger_rebuild"
VERIFY_SCHEMA = "logger_verify"
PROJECTIONS = (PROJECTION_NAME,)
BATCH_SIZE = 5000  # events per transaction of a rebuild or verify


class EventSource(Protocol):
    """The event store, read-only: its head and events after a seq."""

    def head(self) -> int:
        """The highest stored seq."""

    def read(self, after: int, limit: int) -> list[Encoded]:
        """Up to `limit` events with `seq > after`, oldest first, as `(seq, envelope JSON)`."""


# A partitioned log: how it is split, and the event store's positions in it.
Partitions = tuple[Partitioning, catch_up.LogPositions]


class AlreadyRunning(RuntimeError):
    """Another rebuild (or verify) of this projection holds the lock."""


class NotSwapped(RuntimeError):
    """The rebuilt tables were not swapped in (the message says why)."""


ProgressSink = Callable[[Progress], None]


@dataclass
class Rebuilt:
    """What a rebuild did."""

    projection: str
    resumed_from: int
    checkpoint: int
    live_checkpoint: int
    applied: int
    seconds: float
    skipped: dict[int, str] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Events applied per second."""
        return self.applied / self.seconds if self.seconds > 0 else 0.0


class ShadowBuilder:
    """Applies events from the store to a shadow schema, each chunk with its checkpoint."""

    def __init__(self, engine: Engine, schema: str, live: str, source: EventSource, *,
                 name: str = PROJECTION_NAME, batch_size: int = BATCH_SIZE,
                 progress: ProgressSink | None = None, progress_every: float = 2.0,
                 verb: str = "rebuilt", timezone: str = "UTC") -> None:
        self.engine = engine
        self.schema = schema
        self.live = live
        self.source = source
        self.name = name
        self.batch_size = batch_size
        self.progress = progress or (lambda _: None)
        self.progress_every = progress_every
        self.verb = verb
        self.timezone = timezone
        self.applied = 0
        with engine.connect() as connection:
            sequence = shadow.serial_sequence(connection, live, "task_logger")
        if sequence is None:
            raise RuntimeError(f"{live}.task_logger.id has no sequence")
        self.id_sequence = sequence

    def checkpoint(self) -> int:
        """The shadow's checkpoint."""
        with self.engine.connect() as connection:
            return shadow.shadow_checkpoint(connection, self.schema, self.name)

    def build_until(self, target: int) -> None:
        """Apply events up to `target`, one transaction per chunk, reading ahead meanwhile."""
        start = current = self.checkpoint()
        if current >= target:
            return
        report = ProgressReport(self.progress, self.verb, start, target, self.progress_every)
        for events in chunks_after(partial(self._read_until, target), current, "rebuild-read",
                                   until=target):
            with self.engine.begin() as connection:
                self.apply(connection, events)
            current = events[-1][0]
            report.reached(current)
        if current < target:
            raise RuntimeError(f"the event store ends at {current}, before {target}")

    def _read_until(self, target: int, after: int) -> list[Encoded]:
        """The next chunk of stored events after `after`, up to `target` at most."""
        return self.source.read(after, self._limit(after, target))

    def _limit(self, after: int, target: int) -> int:
        return max(1, min(self.batch_size, target - after))

    def catch_up(self, connection: Connection, target: int) -> None:
        """Inside the caller's transaction, apply what the shadow lacks up to `target`."""
        current = shadow.shadow_checkpoint(connection, self.schema, self.name)
        while current < target:
            events = self.source.read(current, self._limit(current, target))
            if not events:
                raise RuntimeError(f"the event store ends at {current}, before {target}")
            self.apply(connection, events)
            current = events[-1][0]

    def apply(self, connection: Connection, events: list[Encoded]) -> None:
        """Apply events after the shadow checkpoint, in the connection's transaction.

        The chunk is tried whole under a savepoint; if it fails, event by event, and an
        event that fails alone is skipped and recorded (as the projector dead-letters it).
        """
        with shadow.in_schema(connection, self.schema):
            store = shadow.ShadowProjectionStore(connection, self.live, self.id_sequence)
            batch = LoggerBatch(store, self.name, timezone=self.timezone)
            fresh = [e for e in events if e[0] > batch.checkpoint]
            if not fresh:
                return
            if fresh[0][0] != batch.checkpoint + 1:
                raise RuntimeError(f"events {batch.checkpoint + 1}..{fresh[0][0] - 1} missing")
            apply_whole_else_each(fresh, partial(_apply_in_savepoint, connection, batch),
                                  partial(_skip, batch), f"chunk {fresh[0][0]}..{fresh[-1][0]}")
            batch.advance(fresh[-1][0])
            self.applied += len(fresh)


def _apply_in_savepoint(connection: Connection, batch: LoggerBatch,
                        events: Sequence[Encoded]) -> None:
    """Apply events inside a savepoint; on failure undo them and raise the error."""
    try:
        with savepoint(connection):
            for seq, payload in events:
                batch.apply_encoded(payload, entry_id_of(seq))
            batch.flush()
    except Exception:
        batch.discard()  # the rows not inserted yet go with it
        raise


def _skip(batch: LoggerBatch, event: Encoded, failure: Exception) -> bool:
    """Record an event that fails alone as skipped (as the projector dead-letters it)."""
    log.error("skipping event %d: %s", event[0], failure)
    batch.skip(event[0], f"{type(failure).__name__}: {failure}")
    return True


def _locked(lock: ApplierLock, what: str) -> None:
    if not lock.acquire():
        raise AlreadyRunning(f"another {what} of this projection is running")


def rebuild(engine: Engine, source: EventSource, lock: ApplierLock, *,
            after_swap: Callable[[Rebuilt, dict], None] = lambda *_: None,
            restart: bool = False, batch_size: int = BATCH_SIZE,
            progress: ProgressSink | None = None, schema: str = REBUILD_SCHEMA,
            name: str = PROJECTION_NAME, timezone: str = "UTC",
            partitions: Partitions | None = None) -> Rebuilt:
    """Rebuild the projection into `schema`, resuming a crashed run, then swap it in.

    `after_swap(result, versions)` runs after the swap committed, with every TaskLogger date
    of the old and new tables and the new version each got in the swap (their cached pages
    are stale). With `partitions` (a partitioned log) the swap holds every partition's
    checkpoint row and sets each to its position at the rebuilt point.
    """
    _locked(lock, "rebuild")
    started = time.monotonic()
    try:
        live = shadow.live_schema(engine)
        with engine.begin() as connection:
            if restart:
                shadow.drop_schema(connection, schema)
            if not shadow.schema_exists(connection, schema):
                shadow.create_shadow(connection, schema, live)
        builder = ShadowBuilder(engine, schema, live, source, name=name,
                                batch_size=batch_size, progress=progress, timezone=timezone)
        resumed_from = builder.checkpoint()
        while (head := source.head()) - builder.checkpoint() > batch_size:
            builder.build_until(head)
        with engine.begin() as connection:
            live_checkpoint = shadow.lock_live_checkpoint(connection, live, name)
            if partitions is not None:  # the store's head is past every partition
                catch_up.lock_all(connection, partitions[0], name)
            builder.catch_up(connection, max(live_checkpoint, source.head()))
            final = shadow.shadow_checkpoint(connection, schema, name)
            dates = shadow.logged_dates(connection, live)
            skipped = shadow.skipped_in(connection, schema, name)
            if partitions is not None and skipped:
                raise NotSwapped(
                    f"the rebuilt tables skip {len(skipped)} events (first: seq "
                    f"{min(skipped)}); a partitioned log swaps only a rebuild that applied "
                    "every event: fix their cause and rebuild again")
            shadow.swap(connection, schema, live, name, final)
            if partitions is not None:
                catch_up.set_positions(connection, *partitions, final, name)
            dates |= shadow.logged_dates(connection, live)
            versions = SqlProjectionStore(connection).mark_changed(dates) if dates else {}
        result = Rebuilt(name, resumed_from, final, live_checkpoint, builder.applied,
                         time.monotonic() - started, skipped)
        after_swap(result, versions)
        return result
    finally:
        lock.release()


def verify(engine: Engine, source: EventSource, lock: ApplierLock, *, batch_size: int = BATCH_SIZE,
           progress: ProgressSink | None = None, show: int = 10,
           schema: str = VERIFY_SCHEMA, name: str = PROJECTION_NAME, timezone: str = "UTC",
           partitions: Partitions | None = None, cache: DateCache | None = None
           ) -> list[shadow.TableDifference]:
    """Compare the live tables with a fresh rebuild at the same checkpoint (a partitioned
    log's partitions are first brought to one point of the log, as a swap does: the live
    tables then take those events, and the days they change get new versions, withdrawn
    from `cache` and published to it)."""
    _locked(lock, "verify")
    try:
        live = shadow.live_schema(engine)
        with engine.begin() as connection:
            shadow.drop_schema(connection, schema)
            shadow.create_shadow(connection, schema, live)
        builder = ShadowBuilder(engine, schema, live, source, name=name,
                                batch_size=batch_size, progress=progress, verb="replayed",
                                timezone=timezone)
        target = read_checkpoint(engine, name)[0] if partitions is None else source.head()
        builder.build_until(target)
        versions: dict[dt.date, int] = {}
        with engine.begin() as connection:
            if partitions is None:
                target = shadow.lock_live_checkpoint(connection, live, name)
            else:
                target = source.head()
                _, versions = catch_up.catch_up(connection, *partitions, target, base=name,
                                                timezone=timezone, cache=cache)
            builder.catch_up(connection, target)
            differences = shadow.compare(connection, live, schema, show)
        if cache is not None and versions:
            cache.changed(versions)
        return differences
    finally:
        try:
            with engine.begin() as connection:
                shadow.drop_schema(connection, schema)
        finally:
            lock.release()
