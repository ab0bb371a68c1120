"""Rebuild the task state table from the events alone."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, insert, text
from sqlalchemy.engine import Engine

from services.task_service.adapters.event_store import lock_appends
from services.task_service.adapters.orm import TaskRecord

State = dict[int, dict[str, Any]]
StoredEvent = tuple[str, int, int, dict[str, Any], datetime]  # type, task_id, version, data, at


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    due = data.get("due_date", "absent")
    fields = dict(data)
    if due != "absent":
        fields["due_date"] = date.fromisoformat(due) if due else None
    return fields


def apply_event(state: State, event: StoredEvent) -> None:
    """Fold one task event into the states by task id."""
    kind, task_id, version, data, at = event
    if kind == "TaskCreated":
        state[task_id] = {**_fields(data), "id": task_id, "created_at": at, "deleted_at": None}
    elif kind == "TaskPurged":
        state.pop(task_id, None)
        return
    elif kind == "TaskUpdated":
        state[task_id].update(_fields(data["changes"]))
    elif kind == "TaskStatusChanged":
        state[task_id]["status"] = data["new_status"]
    elif kind == "TaskSoftDeleted":
        state[task_id]["deleted_at"] = at
    state[task_id].update(version=version, updated_at=at)


def fold(events: Iterable[StoredEvent]) -> State:
    """The state of every task after the events, in seq order."""
    state: State = {}
    for event in events:
        apply_event(state, event)
    return state


_TASK_EVENTS = text(
    "SELECT type, task_id, version, data, occurred_at FROM events "
    "WHERE task_id IS NOT NULL ORDER BY seq"
)


def _stored_events(connection: Connection) -> Iterable[StoredEvent]:
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
