"""Helpers of the task service's integration tests: stream and event store reads."""

from __future__ import annotations

import redis
from sqlalchemy import text
from sqlalchemy.engine import Engine

from shared.bus import seq_of
from shared.events import decode


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
