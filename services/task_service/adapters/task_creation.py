"""A new task and its `TaskCreated` event in one statement, which is its own transaction.

`POST /task` without an `Idempotency-Key` has nothing else to write, so the task row and its
event go in one `INSERT … RETURNING` with a data-modifying CTE, sent on a connection in
autocommit: one round trip instead of five (BEGIN, the task, the event, COMMIT). The event's
data is built in SQL from the inserted row, field by field from the event contract
(`CREATED_FIELDS`), by the same expressions as the bulk import's (a test compares the event
with `created_event` of the stored task).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from functools import cache
from typing import Any

from services.task_service.adapters.bulk_import import as_json
from services.task_service.adapters.event_store import (
    ID_SEQUENCE,
    Written,
    event_id_sql,
    event_metadata,
    json_object_arguments,
)
from services.task_service.adapters.orm import TaskRecord
from services.task_service.domain.model import CREATED_FIELDS, Context, CreateTask
from shared.events import unix_millis

_COLUMNS = ("title", "description", "status", "priority", "due_date", "created_by",
            "created_at", "updated_at", "version")


@cache
def create_sql() -> str:
    """The statement, in the driver's parameter style."""
    data = json_object_arguments(CREATED_FIELDS, {
        name: as_json(name, name) for name in CREATED_FIELDS})
    event_id = event_id_sql("row_id").replace(":epoch_ms", "%(epoch_ms)s")
    return f"""WITH task AS (
    INSERT INTO task_manager ({', '.join(_COLUMNS)})
    VALUES (%(title)s, %(description)s, %(status)s, %(priority)s, %(due_date)s,
            %(created_by)s, %(now)s, %(now)s, 1)
    RETURNING *),
event AS (
    INSERT INTO events (id, event_id, task_id, version, type, data, metadata, occurred_at)
    SELECT row_id, {event_id}, id, version, 'TaskCreated', jsonb_build_object({data}),
           CAST(%(metadata)s AS jsonb), %(now)s
    FROM (SELECT nextval('{ID_SEQUENCE}') AS row_id, task.* FROM task) AS created
    RETURNING id)
SELECT task.*, (SELECT id FROM event) FROM task"""


def create_with_event(connection: Any, command: CreateTask, created_by: int, context: Context,
                      now: datetime) -> tuple[TaskRecord, Written]:
    """Insert the task and its event and commit them (`connection`: a DBAPI connection
    outside any transaction); the task as stored, and where its event is."""
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(create_sql(), {
                **asdict(command), "created_by": created_by, "now": now,
                "epoch_ms": unix_millis(now), "metadata": json.dumps(event_metadata(context))})
            row = cursor.fetchone()
            names = [column.name for column in cursor.description]
    finally:
        connection.autocommit = False
    *values, event_row = row
    return TaskRecord(**dict(zip(names[:-1], values, strict=True))), Written(row_id=event_row)
