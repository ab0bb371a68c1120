"""Rebuild the task state table from the events alone."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, insert, text
from sqlalchemy.engine import Engine

from services.task_service.adapters.event_store import lock_appends
from services.task_service.adapters.orm import TaskRecord
from services.task_service.domain.model import TaskEvent, fold

_TASK_EVENTS = text(
    "SELECT type, task_id, version, data, occurred_at FROM events "
    "WHERE task_id IS NOT NULL ORDER BY seq"
)


def _stored_events(connection: Connection) -> Iterable[TaskEvent]:
    result = connection.execute(_TASK_EVENTS.execution_options(yield_per=10_000))
    for row in result:
        yield tuple(row)  # type: ignore[misc]


def rebuild_state(engine: Engine) -> int:
    """Replace `task_manager` with the fold of the events; return the number of tasks."""
    with engine.begin() as connection:
        connection.execute(text("LOCK TABLE task_manager IN EXCLUSIVE MODE"))
        lock_appends(connection)  # same lock order as every writer: table, then appends
        state = fold(_stored_events(connection))
        connection.execute(text("DELETE FROM task_manager"))
        rows = list(state.values())
        for start in range(0, len(rows), 10_000):
            connection.execute(insert(TaskRecord), rows[start:start + 10_000])
        connection.execute(text(
            "SELECT setval(pg_get_serial_sequence('task_manager', 'id'), m, true) "
            "FROM (SELECT max(task_id) AS m FROM events) AS latest WHERE m IS NOT NULL"
        ))
    return len(state)
