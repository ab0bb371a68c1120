"""A new task and its `TaskCreated` event in one statement, committed, then numbered.

`POST /task` without an `Idempotency-Key` has nothing else to write, so the task row and its
event go in one `INSERT` with a data-modifying CTE, in a transaction of its own, and the
numbering step (`event_store`) follows in the same message to the server: `BEGIN; insert;
COMMIT; try the lock; number`, one round trip instead of six (BEGIN, the task, the event,
COMMIT, the step). The event's data is built in SQL from the inserted row, field by field
from the event contract (`CREATED_FIELDS`), by the same expressions as the bulk import's (a
test compares the event with `created_event` of the stored task).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from functools import cache
from typing import Any

from services.task_service.adapters.bulk_import import as_json
from services.task_service.adapters.event_store import (
    APPEND_LOCK_KEY,
    ID_SEQUENCE,
    NOTIFY_CHANNEL,
    Written,
    event_id_sql,
    event_metadata,
    execute_raw,
    numbering_sql,
    round_trip,
)
from services.task_service.adapters.orm import TaskRecord
from services.task_service.adapters.stored_events import json_object_arguments
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
SELECT count(*) FROM event"""


# The event just inserted, as the numbering step looks it up: a subquery, evaluated once, so
# that the lookup goes through the primary key (a bare `currval`, volatile, cannot be an
# index key: every create that could not number its event read the whole event log).
CREATED_EVENT = f"(SELECT currval('{ID_SEQUENCE}'))"


@cache
def create_and_number_sql() -> str:
    """The insert, committed, then a numbering step if no other is running; its one row:
    (numbered, the event's seq or NULL, head, -, whether it numbered, the task's id, the
    event's internal id)."""
    step = numbering_sql(wait=False, mine=CREATED_EVENT)
    return (f"BEGIN; {create_sql()}; COMMIT; {step}, "
            f"currval(pg_get_serial_sequence('task_manager', 'id')), {CREATED_EVENT}")


def create_with_event(connection: Any, command: CreateTask, created_by: int, context: Context,
                      now: datetime, chunk: int) -> tuple[TaskRecord, Written]:
    """Insert the task and its event, commit them and try to number them (`connection`: a
    DBAPI connection outside any transaction); the task as stored, and where its event is
    (its seq when this step numbered it or found it numbered)."""
    with round_trip(connection) as cursor:
        execute_raw(cursor, create_and_number_sql(), {
            **asdict(command), "created_by": created_by, "now": now,
            "epoch_ms": unix_millis(now), "key": APPEND_LOCK_KEY, "limit": chunk,
            "channel": NOTIFY_CHANNEL, "metadata": json.dumps(event_metadata(context))})
        _, seq, _, _, _, task_id, event_row = cursor.fetchone()
    task = TaskRecord(id=task_id, **asdict(command), created_by=created_by, created_at=now,
                      updated_at=now, version=1, deleted_at=None)
    return task, Written(seq, event_row)
