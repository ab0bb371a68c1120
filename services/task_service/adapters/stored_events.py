"""The event log read back: committed events by position, encoded by PostgreSQL exactly as
the contract's envelope, for the relay, the feed, the republisher and the rebuilds. (What
writes the log and numbers it is `event_store`.)"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.engine import Engine

from shared.events import ENVELOPE_FIELDS, SCHEMA_VERSION, Actor, EventEnvelope

_HEAD = text("SELECT coalesce(max(seq), 0) FROM events")
# The seqs anyone can see are exactly 1..head, so "is n in the log" is one lookup of the
# unique seq index, however many entries an open import has put above the head.
HOLDS = text("SELECT EXISTS (SELECT 1 FROM events WHERE seq = :seq)")


def store_head(connection: Connection) -> int:
    """The highest committed seq (0 for an empty store)."""
    return int(connection.execute(_HEAD).scalar_one())


def json_object_arguments(names: Sequence[str], expressions: dict[str, str]) -> str:
    """The arguments of a SQL `json_build_object` of `names`, in that order."""
    return ", ".join(f"'{name}', {expressions[name]}" for name in names)


# How PostgreSQL writes each envelope field's JSON value from an `events` row: the relay
# publishes what PostgreSQL encodes, never decoding and re-encoding an event. Together with
# `shared.events.ENVELOPE_FIELDS` (the order) this is `shared.events.encode`'s envelope,
# JSON whitespace aside (tests/integration/task_service/test_event_contract.py). The JSON is
# joined as text (strings through `to_json`, which escapes them): one and a half times the
# rows per second of a `json_build_object` of the same fields, for every reader of the log.
ENVELOPE_VALUES = {
    "event_id": """'"' || event_id || '"'""", "seq": "seq::text",
    "type": "to_json(type)::text", "task_id": "coalesce(task_id::text, 'null')",
    "version": "coalesce(version::text, 'null')",
    "occurred_at": """'"' || to_char(occurred_at AT TIME ZONE 'UTC',
        CASE WHEN date_part('microseconds', occurred_at)::bigint % 1000000 = 0
             THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END) || '"'""",
    "schema_version": f"coalesce((metadata->>'schema_version')::int, {SCHEMA_VERSION})::text",
    "actor": "coalesce((metadata->'actor')::text, 'null')",
    "correlation_id": "coalesce(to_json(metadata->>'correlation_id')::text, 'null')",
    "data": "coalesce(data::text, 'null')",
}
ENVELOPE_JSON = "('{' || " + " || ',' || ".join(
    f"""'"{name}":' || {ENVELOPE_VALUES[name]}""" for name in ENVELOPE_FIELDS) + " || '}')"

_ENCODED_AFTER = text(
    f"SELECT seq, {ENVELOPE_JSON} FROM events WHERE seq > :after ORDER BY seq LIMIT :limit")


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

    def holds(self, seq: int) -> bool:
        """Whether the log holds position `seq` (committed and numbered)."""
        with self.engine.connect() as connection:
            return bool(connection.execute(HOLDS, {"seq": seq}).scalar_one())

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
