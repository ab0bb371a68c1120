"""Helpers of the task service's integration tests: polling and stream reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from sqlalchemy import text
from sqlalchemy.engine import Engine

from shared.bus import seq_of
from shared.events import decode
from tests.stack import wait_until


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy; fail the test after `timeout` seconds."""
    return wait_until(predicate, timeout=timeout, interval=interval)


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
