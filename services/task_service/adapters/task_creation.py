"""A new task and its `TaskCreated` event in one statement and one transaction, numbered in it
when it can be.

`POST /task` without an `Idempotency-Key` has nothing else to write, so the task row and its
event go in one `INSERT` with a data-modifying CTE, in a transaction of its own that first
tries the sequencing lock (`event_store`): when no numbering step is running, it numbers
what is pending and inserts the event with its seq, so the command commits once and its
event is written once; when one is, the event goes in unnumbered and the step after the
commit numbers it (`Sequencer.position`). One message to the server: `try the lock; number
what is pending; insert`, both statements prepared once per connection (`prepared`). The
event's data is built in SQL from the inserted row, field by field
from the event contract (`CREATED_FIELDS`), by the same expressions as the bulk import's (a
test compares the event with `created_event` of the stored task).
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache

from sqlalchemy.pool import PoolProxiedConnection

from services.task_service.adapters.bulk_import import as_json
from services.task_service.adapters.event_store import (
    ID_SEQUENCE,
    Written,
    event_id_sql,
    event_metadata,
    numbering_parameters,
    numbering_sql,
    round_trip,
    run_step,
)
from services.task_service.adapters.prepared import Prepared
from services.task_service.adapters.stored_events import json_object_arguments
from services.task_service.domain.model import (
    CREATED_FIELDS,
    Context,
    CreateTask,
    TaskState,
    task_from,
)
from shared.events import unix_millis

_COLUMNS = ("title", "description", "status", "priority", "due_date", "created_by",
            "created_at", "updated_at", "version")


@cache
def create_sql() -> str:
    """The statement, in the driver's parameter style: the task and its event, the event
    numbered at once (`head + 1`, and the relay woken) when this transaction holds the
    sequencing lock and nothing committed before waits for a seq (more than a step's chunk
    was pending, or it committed after the step): those come first, so the event is left
    to the step after the commit. Its row: (the event's seq or NULL, the task's id, the
    event's id)."""
    data = json_object_arguments(CREATED_FIELDS, {
        name: as_json(name, name) for name in CREATED_FIELDS})
    event_id = event_id_sql("row_id").replace(":epoch_ms", "%(epoch_ms)s")
    return f"""WITH head AS (SELECT (SELECT coalesce(max(seq), 0) FROM events) AS seq
              WHERE current_setting('taskstream.numbering', true) = 'true'
              AND NOT EXISTS (SELECT FROM events WHERE seq IS NULL)),
task AS (
    INSERT INTO task_manager ({', '.join(_COLUMNS)})
    VALUES (%(title)s, %(description)s, %(status)s, %(priority)s, %(due_date)s,
            %(created_by)s, %(now)s, %(now)s, 1)
    RETURNING *),
event AS (
    INSERT INTO events (id, seq, event_id, task_id, version, type, data, metadata,
                        occurred_at)
    SELECT row_id, (SELECT seq + 1 FROM head), {event_id}, id, version, 'TaskCreated',
           jsonb_build_object({data}), CAST(%(metadata)s AS jsonb), %(now)s
    FROM (SELECT nextval('{ID_SEQUENCE}') AS row_id, task.* FROM task) AS created
    RETURNING id, seq, task_id)
SELECT seq, task_id, id, (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, seq::text)
                                                WHERE seq IS NOT NULL) AS woken)
FROM event"""


CREATE = Prepared("taskstream_create", {
    "title": "text", "description": "text", "status": "text", "priority": "text",
    "due_date": "date", "created_by": "bigint", "now": "timestamptz", "epoch_ms": "bigint",
    "metadata": "text", "channel": "text"}, create_sql())


@cache
def create_and_number_sql() -> str:
    """One transaction: try the sequencing lock; if it is free, number what is pending and
    insert the task and its event with its seq (one commit, no update of the event);
    else insert it unnumbered, for the step after the commit (`Sequencer.position`). (Sent
    as one message without BEGIN and COMMIT, the statements are one transaction, committed
    after the last, whose row is the answer.)"""
    return f"{numbering_sql(wait=False)}; {CREATE.call()}"


def create_with_event(pooled: PoolProxiedConnection, command: CreateTask, created_by: int,
                      context: Context, now: datetime, chunk: int
                      ) -> tuple[TaskState, Written]:
    """Insert the task and its event, commit them and try to number them (`connection`: a
    pooled connection outside any transaction); the task as stored, and where its event is
    (its seq when this step numbered it or found it numbered)."""
    fields = vars(command)  # its values as they are (`asdict` deep-copies each of them)
    with round_trip(pooled.driver_connection) as cursor:
        seq, task_id, event_row, _ = run_step(pooled, cursor, create_and_number_sql(), {
            **fields, **numbering_parameters(chunk), "created_by": created_by,
            "now": now, "epoch_ms": unix_millis(now),
            "metadata": json.dumps(event_metadata(context))}, CREATE)
    task = task_from({"id": task_id, **fields, "created_by": created_by, "created_at": now,
                      "updated_at": now, "version": 1, "deleted_at": None})
    return task, Written(seq, event_row)
