"""Bulk creation of tasks and their `TaskCreated` events: COPY, then two set-based inserts.

The rows are COPYed to a staging table whose `id` defaults to the next value of
`task_manager`'s own id sequence, so every row gets its task id in file order as it lands.
The tasks are inserted first, without the append lock; only the events insert runs under
it (seq = head + the row's position), so other writers wait as briefly as possible.
Neither insert sorts anything.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import IO

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.task_service.adapters.event_store import (
    event_metadata,
    json_object_arguments,
    lock_appends,
    notify,
)
from services.task_service.domain.model import CREATED_FIELDS, Context
from shared.events import unix_millis

_ID_SEQUENCE = text("SELECT pg_get_serial_sequence('task_manager', 'id')")

_STAGE = (
    "CREATE TEMP TABLE csv_import (n bigint, title text, description text, status text, "
    "priority text, due_date date, id bigint DEFAULT nextval({sequence})) ON COMMIT DROP"
)

_INSERT_TASKS = text("""
INSERT INTO task_manager (id, title, description, status, priority, due_date, created_by,
                          created_at, updated_at, version)
SELECT id, title, description, status, priority, due_date, :user_id, :now, :now, 1
FROM csv_import
""")

# `shared.events.new_event_id`'s UUIDv7 layout (a test pins it): the 48-bit counter after the
# millisecond timestamp is the event's seq, so the ids ascend with seq and a million new ids
# append to the end of the event_id index instead of landing at random places in it (a third
# of the insert's time with random UUIDs).
_EVENT_ID_V7 = """CAST(
       lpad(to_hex(CAST(:epoch_ms AS bigint)), 12, '0') || '7'
       || lpad(to_hex(((:head + n) >> 36) & 4095), 3, '0')
       || to_hex(8 | (((:head + n) >> 34) & 3))
       || lpad(to_hex((:head + n) & 17179869183), 9, '0')
       || lpad(to_hex(CAST(floor(random() * 16777216) AS int)), 6, '0') AS uuid)"""

# How PostgreSQL computes each field of a staged row's `TaskCreated` data: the object
# `created_event` builds for the same task (a test compares them on real rows).
CREATED_DATA_SQL = {
    "title": "title", "description": "description", "status": "status",
    "priority": "priority", "due_date": "to_char(due_date, 'YYYY-MM-DD')",
    "created_by": "CAST(:user_id AS bigint)",
}

_INSERT_EVENTS = text(f"""
INSERT INTO events (seq, event_id, task_id, version, type, data, metadata, occurred_at)
SELECT :head + n, {_EVENT_ID_V7}, id, 1, 'TaskCreated',
       jsonb_build_object({json_object_arguments(CREATED_FIELDS, CREATED_DATA_SQL)}),
       CAST(:metadata AS jsonb), :now
FROM csv_import
""")


class BulkTaskWriter:
    """Writes a validated CSV's rows inside the unit of work's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def insert_created(self, copy_file: IO[bytes], context: Context, now: datetime) -> int:
        """COPY the rows (numbered 1..N) to staging, then create tasks and events."""
        self._stage(copy_file)
        user = int(context.actor.id or 0)
        count = int(self.session.execute(  # type: ignore[attr-defined]
            _INSERT_TASKS, {"user_id": user, "now": now}).rowcount or 0)
        head = lock_appends(self.session)  # lock order everywhere: task_manager, then appends
        self.session.execute(_INSERT_EVENTS, {
            "user_id": user, "now": now, "head": head, "epoch_ms": unix_millis(now),
            "metadata": json.dumps(event_metadata(context)),
        })
        notify(self.session, head + count)
        return count

    def _stage(self, copy_file: IO[bytes]) -> None:
        sequence = self.session.execute(_ID_SEQUENCE).scalar_one()
        literal = "'" + sequence.replace("'", "''") + "'"
        self.session.execute(text(_STAGE.format(sequence=literal)))
        cursor = self.session.connection().connection.cursor()
        cursor.copy_expert(
            "COPY csv_import (n, title, description, status, priority, due_date) "
            "FROM STDIN WITH (NULL '')", copy_file, size=1 << 20,
        )
