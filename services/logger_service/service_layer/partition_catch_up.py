"""Bring the partitions of a partitioned log to one point of the whole log, from the event
store: what a rebuild's swap, a verify and a re-partition need, since each partition's
checkpoint stands at its own place.

Inside one transaction that holds every partition's checkpoint row (taken in partition
order, the lock each projector batch takes first, so the projector pauses between two
batches), each partition's events after its checkpoint up to global seq `through` are read
from the event store (the relay's own read by seq, filtered to the partition) and applied
through the partition's own store, and its checkpoint is set to its position at `through`.
Applied so, each event is applied once: the partition's checkpoint moves in the same
transaction, and the projector skips what it covers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.engine import Connection

from services.logger_service.adapters.projection_store import SqlProjectionStore
from services.logger_service.service_layer.projection import (
    PROJECTION_NAME,
    DateCache,
    LoggerBatch,
    NoDateCache,
    mark_changed,
)
from shared.stream.entries import entry_id_of
from shared.stream.partitions import Partitioning

CHUNK = 5000


class LogPositions(Protocol):
    """The event store read by partition (`task_service.adapters.partition_reads`)."""

    def counts(self, through: int) -> list[int]:
        """Each partition's position at global seq `through`."""

    def seq_at(self, partition: int, pseq: int) -> int:
        """The global seq of a partition's position."""

    def routed_after(self, after: int, limit: int) -> Sequence[tuple[int, int | None, str]]:
        """Events after a global seq: (seq, task id, envelope JSON)."""


def names(partitioning: Partitioning, base: str = PROJECTION_NAME) -> list[str]:
    """Every partition's checkpoint name."""
    return [partitioning.checkpoint_name(base, p) for p in range(partitioning.count)]


def lock_all(connection: Connection, partitioning: Partitioning,
             base: str = PROJECTION_NAME) -> list[int]:
    """Lock every partition's checkpoint row, in partition order; their positions."""
    store = SqlProjectionStore(connection)
    return [store.lock_checkpoint(name) for name in names(partitioning, base)]


def catch_up(connection: Connection, partitioning: Partitioning, positions: LogPositions,
             through: int, *, base: str = PROJECTION_NAME, timezone: str = "UTC",
             cache: DateCache | None = None) -> tuple[int, dict[dt.date, int]]:
    """Inside the caller's transaction (holding `lock_all`), apply every partition's events
    up to global seq `through`; return how many events were applied, and the new versions of
    the days they changed (their cached pages withdrawn from `cache` now: the caller
    publishes the versions after its commit, as a projector batch does)."""
    checkpoints = lock_all(connection, partitioning, base)
    targets = positions.counts(through)
    applied, touched = 0, set()
    for partition, (checkpoint, target) in enumerate(zip(checkpoints, targets, strict=True)):
        if checkpoint >= target:
            continue
        store = SqlProjectionStore(connection, (partition, partitioning.count)
                                   if partitioning.partitioned else None)
        batch = LoggerBatch(store, partitioning.checkpoint_name(base, partition),
                            timezone=timezone)
        after, position = positions.seq_at(partition, checkpoint), checkpoint
        while position < target:
            rows = positions.routed_after(after, CHUNK)
            for seq, task_id, payload in rows:
                if seq > through:
                    break
                if partitioning.owns(partition, task_id):
                    position += 1
                    batch.apply_encoded(payload, entry_id_of(position))
            after = rows[-1][0]
        batch.advance(position)
        touched |= batch.touched
        applied += position - checkpoint
    versions = mark_changed(SqlProjectionStore(connection), cache or NoDateCache(), touched)
    return applied, versions


def set_positions(connection: Connection, partitioning: Partitioning, positions: LogPositions,
                  through: int, base: str = PROJECTION_NAME) -> list[int]:
    """Set every partition's checkpoint to its position at global seq `through` (the
    projection tables hold the whole log up to it); return the positions."""
    targets = positions.counts(through)
    store = SqlProjectionStore(connection)
    for name, target in zip(names(partitioning, base), targets, strict=True):
        store.lock_checkpoint(name)
        store.advance_checkpoint(name, target)
    return targets
