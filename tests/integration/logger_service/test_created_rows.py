"""A TaskCreated makes the same replica row, decoded in Python or read from JSON by SQL."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.logger_service.adapters.projection_store import sql_transaction
from services.logger_service.service_layer.projection import new_task_row
from shared.events import EventEnvelope, encode
from tests.unit.logger_service.factories import EventFactory

PARIS_EVENING = dt.datetime(2025, 4, 5, 23, 30, 1, 123456,
                            tzinfo=dt.timezone(dt.timedelta(hours=2)))


def created_events(events: EventFactory) -> list[EventEnvelope]:
    """TaskCreated events with every field, with few, and with odd values."""
    return [
        events.created(1, due_date="2025-03-04", priority="high", status="in_progress"),
        events.created(2, description=None, due_date=None),
        events.event("TaskCreated", 3, {"title": "only a title"}),
        events.event("TaskCreated", 4, {"title": 'Été "☃" \\ \u2028', "description": "x\ny",
                                        "status": "cancelled", "priority": "low",
                                        "due_date": "2024-02-29"}, at=PARIS_EVENING),
        dataclasses.replace(events.created(5), version=None),
        dataclasses.replace(events.created(6), version=0),
    ]


def replica(engine: Engine) -> list[tuple]:
    """Every row of task_state, every column; then the table is emptied."""
    with engine.begin() as connection:
        rows = [tuple(row) for row in connection.execute(text(
            "SELECT * FROM task_state ORDER BY task_id"))]
        connection.execute(text("DELETE FROM task_state"))
    return rows


def test_insert_encoded_tasks_makes_the_rows_new_task_row_makes(
        engine: Engine, events: EventFactory) -> None:
    """INSERT_ENCODED_TASKS (from the stream's JSON) and new_task_row (decoded) agree."""
    created = created_events(events)
    with sql_transaction(engine)() as store:
        store.insert_encoded_tasks([encode(event) for event in created])
    from_json = replica(engine)
    with sql_transaction(engine)() as store:
        store.insert_tasks([new_task_row(event) for event in created])
    assert replica(engine) == from_json
    assert len(from_json) == 6
