"""One task's events read from the event store: its history as the contract's envelopes
(encoded by PostgreSQL, as the relay publishes them) and the events to fold up to a point."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text
from sqlalchemy.engine import Engine

from services.task_service.adapters.stored_events import ENVELOPE_JSON
from services.task_service.domain.model import TaskEvent

# A task's events are read along the unique (task_id, version) index: version order is the
# task's seq order. Only numbered events are shown: one committed a moment ago gets its seq
# within milliseconds (adapters/event_store.py), and until then it is not in the log.
_ENVELOPES = text(
    f"SELECT {ENVELOPE_JSON} "
    "FROM events WHERE task_id = :task_id AND seq IS NOT NULL ORDER BY version "
    "LIMIT :limit OFFSET :offset")
_COUNT = text("SELECT count(*) FROM events WHERE task_id = :task_id AND seq IS NOT NULL")
_UNTIL = ("SELECT type, task_id, version, data, occurred_at FROM events "
          "WHERE task_id = :task_id AND seq IS NOT NULL AND {column} <= :point ORDER BY version")
_CURRENT = text("SELECT 1 FROM task_manager WHERE id = :task_id AND deleted_at IS NULL")


class TaskHistory:
    """A task's events, each read in one snapshot of its own (SELECTs only)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine.execution_options(isolation_level="REPEATABLE READ")

    def page(self, task_id: int, offset: int, limit: int) -> tuple[list[str], int] | None:
        """A page of the task's events, oldest first, as envelope JSON, and how many it has
        in all; None when the task is not current (never created, deleted or purged)."""
        with self.engine.connect() as connection:
            if not is_current(connection, task_id):
                return None
            found = connection.execute(_ENVELOPES, {
                "task_id": task_id, "limit": limit, "offset": offset}).scalars().all()
            total = connection.execute(_COUNT, {"task_id": task_id}).scalar_one()
            return list(found), int(total)

    def until(self, task_id: int, point: int | datetime | None) -> list[TaskEvent] | None:
        """The task's events up to a position (`seq <= point`), a time (`occurred_at <=
        point`) or all of them, for the fold; None when the task is not current."""
        with self.engine.connect() as connection:
            if not is_current(connection, task_id):
                return None
            return task_events_until(connection, task_id, point)


def is_current(connection: Connection, task_id: int) -> bool:
    """True when the task exists and is not deleted (the state its events leave)."""
    return connection.execute(_CURRENT, {"task_id": task_id}).first() is not None


def task_events_until(connection: Connection, task_id: int, point: int | datetime | None
                      ) -> list[TaskEvent]:
    """The task's events (type, task id, version, data, time) up to a point, oldest first."""
    if point is None:
        query, point = _UNTIL.format(column="seq"), 2**63 - 1
    else:
        query = _UNTIL.format(column="occurred_at" if isinstance(point, datetime) else "seq")
    rows = connection.execute(text(query), {"task_id": task_id, "point": point}).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]
