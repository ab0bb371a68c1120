"""The event store, read-only, for rebuilds: the task service's adapter on its database.

Only operator commands (`taskstream projections rebuild|verify`) use this; the logger's
processes know tasks through the stream alone.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from services.task_service.adapters.event_store import read_encoded_after, store_head


class StoredEvents:
    """`EventSource` over the tasks database's `events` table (SELECTs only)."""

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
