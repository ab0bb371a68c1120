"""Operator use cases on dead letters: list, retry (apply exactly once), drop.

A dead-lettered event was skipped: the consumer advanced the checkpoint past it and recorded
the skip in `projection_skipped`, in one transaction. A retry therefore applies the event
directly (never through the stream, which would skip it as `seq <= checkpoint`), in a
transaction that

1. locks the checkpoint row, which serialises it with the projector's batches (and with a
   rebuild's swap), so nothing is applied between its checks and its effect;
2. deletes the skip record — if there is none, the event's effect is already in these tables
   (an earlier retry that died before removing the entry, or a rebuild that applied it), so it
   is not applied again;
3. refuses, unless forced, when the task has already moved past the event's version: events
   of one task must apply in order, and applying an old change on top of newer ones would
   undo them (`projections rebuild` replays everything in order instead);
4. applies the event, versions the dates it changed (withdrawing their cached pages) and
   commits; only then is the entry removed from the dead-letter stream.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from services.logger_service.adapters.dead_letters import DeadLetter, DeadLetterStream
from services.logger_service.service_layer.projection import (
    PROJECTION_NAME,
    DateCache,
    LoggerBatch,
    ProjectionStore,
    mark_changed,
)
from shared.events import EventEnvelope, decode

Transaction = Callable[[], AbstractContextManager[ProjectionStore]]


class DeadLetterNotFound(LookupError):
    """No dead letter has that entry id."""


class RetryRefused(Exception):
    """The dead letter cannot be applied now (the message says why)."""


@dataclass(frozen=True)
class Retried:
    """What a retry did."""

    entry_id: str
    seq: int
    applied: bool
    message: str


def list_dead_letters(stream: DeadLetterStream) -> list[DeadLetter]:
    """Every dead letter, oldest first."""
    return stream.list()


def drop(stream: DeadLetterStream, entry_id: str) -> None:
    """Remove a dead letter without applying it (its skip stays recorded)."""
    if not stream.remove(entry_id):
        raise DeadLetterNotFound(entry_id)


def _event(letter: DeadLetter) -> EventEnvelope:
    try:
        return decode(letter.payload, letter.event_entry_id)
    except ValueError as exc:
        raise RetryRefused(f"the payload of {letter.entry_id} cannot be decoded: {exc}") from exc


def retry(stream: DeadLetterStream, transaction: Transaction, cache: DateCache, entry_id: str,
          *, force: bool = False, name: str = PROJECTION_NAME, timezone: str = "UTC") -> Retried:
    """Apply a dead-lettered event exactly once, then remove it from the dead letters."""
    letter = stream.get(entry_id)
    if letter is None:
        raise DeadLetterNotFound(entry_id)
    event = _event(letter)
    position = letter.seq  # in its stream: the seq itself, or its partition's position
    versions: dict[dt.date, int] = {}
    with transaction() as store:
        checkpoint = store.lock_checkpoint(name)
        if position > checkpoint:
            raise RetryRefused(
                f"event {event.seq} is beyond the checkpoint ({checkpoint}): the projector "
                "has not passed it, and will apply it in order from the stream")
        if not store.take_skip(name, position):
            applied, message = False, f"event {event.seq} is already applied; entry removed"
        else:
            _check_order(store, event, force)
            batch = LoggerBatch(store, name, timezone=timezone)
            batch.apply(event)
            batch.flush()
            versions = mark_changed(store, cache, batch.touched)
            applied, message = True, f"event {event.seq} ({event.type}) applied; entry removed"
    if versions:
        cache.changed(versions)
    stream.remove(entry_id)
    return Retried(entry_id, event.seq, applied, message)


def _check_order(store: ProjectionStore, event: EventEnvelope, force: bool) -> None:
    if force or event.task_id is None or event.version is None:
        return
    current = store.task_version(event.task_id)
    if current is not None and current > event.version:
        raise RetryRefused(
            f"task {event.task_id} is at version {current}, after this event's "
            f"{event.version}: applying it now would undo later changes. Run "
            "`taskstream projections rebuild` (replays in order), drop it, or retry --force")
