"""The event store on PostgreSQL: appends under one lock, reads by seq.

Appends take a transaction-scoped advisory lock and assign `seq = max(seq) + 1`. The lock is
held until commit, so an event with a higher seq can never become visible before one with a
lower seq: seq order is commit order, and seqs are contiguous (no holes from rollbacks).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, insert, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from services.task_service.adapters.orm import SCHEDULED_TRANSFER, EventRecord
from services.task_service.domain.model import Context, NewEvent, TaskEvent
from shared.events import ENVELOPE_FIELDS, SCHEMA_VERSION, Actor, EventEnvelope, new_event_id

APPEND_LOCK_KEY = 7_213_400_101  # pg_advisory_xact_lock key serialising appends
NOTIFY_CHANNEL = "taskstream_events"

_HEAD = text("SELECT coalesce(max(seq), 0) FROM events")
_TASK_EVENTS = text(
    "SELECT type, task_id, version, data, occurred_at FROM events "
    "WHERE task_id IS NOT NULL ORDER BY seq"
)
# Answered from the partial unique index over scheduled transfers (the same predicate).
LAST_SCHEDULED = text(f"SELECT max(data->>'date') FROM events WHERE {SCHEDULED_TRANSFER}")


def event_metadata(context: Context) -> dict[str, Any]:
    """The metadata stored with every event: actor, correlation id, schema version."""
    return {
        "actor": asdict(context.actor), "correlation_id": context.correlation_id,
        "schema_version": SCHEMA_VERSION,
    }


def lock_appends(session: Session | Connection) -> int:
    """Take the append lock for this transaction; return the store's head seq."""
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK_KEY})
    return int(session.execute(_HEAD).scalar_one())


def notify(session: Session | Connection, head: int) -> None:
    """Wake the relay when this transaction commits."""
    session.execute(text("SELECT pg_notify(:channel, :head)"),
                    {"channel": NOTIFY_CHANNEL, "head": str(head)})


class EventStore:
    """Append events within a unit of work's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def lock(self) -> int:
        """Take the append lock now (it is re-entrant); return the head seq."""
        self.session.flush()
        return lock_appends(self.session)

    def append(self, events: Sequence[NewEvent], context: Context, now: datetime
               ) -> list[tuple[int, uuid.UUID]]:
        """Append events after any pending state change; return their seqs and ids."""
        if not events:
            return []
        self.session.flush()  # state changes first, so the lock is held as briefly as possible
        head = lock_appends(self.session)
        metadata = event_metadata(context)
        ids = [(seq, new_event_id(seq, now)) for seq in range(head + 1, head + len(events) + 1)]
        rows = [{
            "seq": seq, "event_id": event_id, "task_id": event.task_id,
            "version": event.version, "type": event.type, "data": event.data,
            "meta": metadata, "occurred_at": now,
        } for (seq, event_id), event in zip(ids, events, strict=True)]
        self.session.execute(insert(EventRecord), rows)
        notify(self.session, head + len(rows))
        return ids

    def last_position(self) -> int:
        """The position of the latest event this transaction sees: after an append, its own
        last event (the append lock keeps later ones out until the commit); else the head."""
        return int(self.session.execute(_HEAD).scalar_one())

    def task_events(self) -> Iterator[TaskEvent]:
        """Every event of a task, in seq order, streamed: what the task table is folded from."""
        rows = self.session.execute(_TASK_EVENTS.execution_options(yield_per=10_000))
        for row in rows:
            yield tuple(row)  # type: ignore[misc]

    def last_scheduled_transfer(self) -> date | None:
        """The latest date the daily schedule has requested a transfer for, if any."""
        found = self.session.execute(LAST_SCHEDULED).scalar()
        return date.fromisoformat(found) if found else None


def store_head(connection: Connection) -> int:
    """The highest committed seq (0 for an empty store)."""
    return int(connection.execute(_HEAD).scalar_one())


def json_object_arguments(names: Sequence[str], expressions: dict[str, str]) -> str:
    """The arguments of a SQL `json_build_object` of `names`, in that order."""
    return ", ".join(f"'{name}', {expressions[name]}" for name in names)


# How PostgreSQL computes each envelope field from an `events` row: the relay publishes
# what PostgreSQL encodes, never decoding and re-encoding an event. Together with
# `shared.events.ENVELOPE_FIELDS` (the order) this is `shared.events.encode`'s envelope,
# JSON whitespace aside (tests/integration/task_service/test_event_contract.py).
ENVELOPE_SQL = {
    "event_id": "event_id", "seq": "seq", "type": "type", "task_id": "task_id",
    "version": "version",
    "occurred_at": """to_char(occurred_at AT TIME ZONE 'UTC',
        CASE WHEN date_part('microseconds', occurred_at)::bigint % 1000000 = 0
             THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END)""",
    "schema_version": f"coalesce((metadata->>'schema_version')::int, {SCHEMA_VERSION})",
    "actor": "metadata->'actor'", "correlation_id": "metadata->>'correlation_id'",
    "data": "data",
}

_ENCODED_AFTER = text(
    f"SELECT seq, json_build_object({json_object_arguments(ENVELOPE_FIELDS, ENVELOPE_SQL)})"
    "::text FROM events WHERE seq > :after ORDER BY seq LIMIT :limit"
)


def read_encoded_after(connection: Connection, after: int, limit: int
                       ) -> list[tuple[int, str]]:
    """Committed events with `seq > after`, oldest first, as `(seq, envelope JSON)`."""
    rows = connection.execute(_ENCODED_AFTER, {"after": after, "limit": limit}).all()
    return [(int(seq), payload) for seq, payload in rows]


class StoredEvents:
    """The event log, read-only, each read on a pooled connection of its own (SELECTs only):
    the relay's and the republisher's source, and the logger's rebuilds'."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def head(self) -> int:
        """The highest stored seq."""
        with self.engine.connect() as connection:
            return store_head(connection)

    def read(self, after: int, limit: int) -> list[tuple[int, str]]:
        """Up to `limit` events after `after`, oldest first, as `(seq, envelope JSON)`."""
        with self.engine.connect() as connection:
            return read_encoded_after(connection, after, limit)

    def one(self, *, seq: int | None = None, event_id: uuid.UUID | None = None
            ) -> EventEnvelope | None:
        """One stored event, by seq or by event id (None if there is none)."""
        with self.engine.connect() as connection:
            return read_one(connection, seq=seq, event_id=event_id)


_READ_ONE = ("SELECT seq, event_id, task_id, version, type, data, metadata, occurred_at "
             "FROM events WHERE {column} = :key")


def read_one(connection: Connection, *, seq: int | None = None,
             event_id: uuid.UUID | None = None) -> EventEnvelope | None:
    """One stored event, by seq or by event id (None if there is none)."""
    column, key = ("seq", seq) if event_id is None else ("event_id", event_id)
    row = connection.execute(text(_READ_ONE.format(column=column)), {"key": key}).first()
    return envelope(*row) if row else None


def envelope(seq: int, event_id: Any, task_id: int | None, version: int | None, type_: str,
             data: dict[str, Any], metadata: dict[str, Any], occurred_at: datetime,
             ) -> EventEnvelope:
    """Turn one stored row into the contract's envelope."""
    actor = metadata.get("actor")
    return EventEnvelope(
        event_id=str(event_id), seq=seq, type=type_, task_id=task_id, version=version,
        occurred_at=occurred_at, data=data, actor=Actor(**actor) if actor else None,
        correlation_id=metadata.get("correlation_id"),
        schema_version=int(metadata.get("schema_version", SCHEMA_VERSION)),
    )
