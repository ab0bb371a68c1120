"""Helpers of the task service's integration tests: stream and event store reads."""

from __future__ import annotations

import redis
from sqlalchemy import Connection, text
from sqlalchemy.engine import Engine

from services.task_service.adapters.stored_events import read_one, store_head
from shared.events import EventEnvelope, decode
from shared.stream.entries import seq_of


def stream_seqs(client: redis.Redis, stream: str) -> list[int]:
    """The seqs in the stream, checking each entry id against the event it carries."""
    seqs = []
    for entry_id, fields in client.xrange(stream):
        event = decode(fields[b"event"])
        assert entry_id.decode() == f"{event.seq}-0"
        seqs.append(event.seq)
    return seqs


def stream_ids(client: redis.Redis, stream: str) -> list[int]:
    """The seqs of the stream's entry ids (without reading the payloads)."""
    return [seq_of(entry_id) for entry_id, _fields in client.xrange(stream)]


def store_seqs(engine: Engine) -> list[int]:
    """The seqs in the event store, in order."""
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT seq FROM events ORDER BY seq")).scalars())


def read_after(connection: Connection, after: int, limit: int) -> list[EventEnvelope]:
    """Stored events with `seq > after` (at most `limit`), oldest first, as envelopes."""
    last = min(store_head(connection), after + limit)
    return [event for seq in range(after + 1, last + 1)
            if (event := read_one(connection, seq=seq)) is not None]
