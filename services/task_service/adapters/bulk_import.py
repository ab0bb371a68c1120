"""Bulk creation of tasks and their `TaskCreated` events: COPY, then two set-based inserts."""

from __future__ import annotations

import json
from datetime import datetime
from typing import IO

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.task_service.adapters.event_store import event_metadata, lock_appends, notify
from services.task_service.domain.model import Context

_STAGE = text(
    "CREATE TEMP TABLE csv_import (row_no bigint, title text, description text, status text, "
    "priority text, due_date date) ON COMMIT DROP"
)

# One statement: insert the tasks in file order, then one TaskCreated per task, with seqs
# following the store's head (the append lock is already held). The event's data has the
# same keys as the one `created_event` builds for a single task.
_INSERT = text("""
WITH inserted AS (
    INSERT INTO task_manager (title, description, status, priority, due_date, created_by,
                              created_at, updated_at, version)
    SELECT title, description, status, priority, due_date, :user_id, :now, :now, 1
    FROM csv_import ORDER BY row_no
    RETURNING id, title, description, status, priority, due_date
)
INSERT INTO events (seq, event_id, task_id, version, type, data, metadata, occurred_at)
SELECT :head + row_number() OVER (ORDER BY id), gen_random_uuid(), id, 1, 'TaskCreated',
       jsonb_build_object('title', title, 'description', description, 'status', status,
                          'priority', priority, 'due_date', to_char(due_date, 'YYYY-MM-DD'),
                          'created_by', CAST(:user_id AS bigint)),
       CAST(:metadata AS jsonb), :now
FROM inserted
""")


class BulkTaskWriter:
    """Writes a validated CSV's rows inside the unit of work's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def insert_created(self, copy_file: IO[bytes], context: Context, now: datetime) -> int:
        """COPY the rows to a staging table, then create tasks and events; return the count."""
        self.session.execute(_STAGE)
        cursor = self.session.connection().connection.cursor()
        cursor.copy_expert(
            "COPY csv_import (row_no, title, description, status, priority, due_date) "
            "FROM STDIN", copy_file, size=1 << 20,
        )
        # Lock order everywhere: task_manager first, then the append lock (no deadlocks).
        self.session.execute(text("LOCK TABLE task_manager IN ROW EXCLUSIVE MODE"))
        head = lock_appends(self.session)
        result = self.session.execute(_INSERT, {
            "user_id": int(context.actor.id or 0), "now": now, "head": head,
            "metadata": json.dumps(event_metadata(context)),
        })
        count = int(result.rowcount or 0)  # type: ignore[attr-defined]
        notify(self.session, head + count)
        return count
