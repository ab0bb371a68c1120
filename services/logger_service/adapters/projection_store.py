"""Writes of the projector, as set-based SQL on one connection (one transaction)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, cast

from sqlalchemy import Table, delete, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from services.logger_service.adapters.orm import (
    AuditEntry,
    Checkpoint,
    DateVersion,
    SkippedEvent,
    TaskLogEntry,
    TaskReplica,
    TransferRun,
)
from shared.db import advance_checkpoint, lock_checkpoint

TRANSFERABLE_STATUSES = ("active", "in_progress")
LOGGED_FIELDS = ("title", "description", "status", "priority")

replicas = cast(Table, TaskReplica.__table__)
task_log = cast(Table, TaskLogEntry.__table__)
audit = cast(Table, AuditEntry.__table__)
checkpoints = cast(Table, Checkpoint.__table__)
skipped = cast(Table, SkippedEvent.__table__)
versions = cast(Table, DateVersion.__table__)
transfer_runs = cast(Table, TransferRun.__table__)

# Column names a replica update may set (they are spliced into SQL, so only these).
UPDATABLE = frozenset({
    "title", "description", "status", "priority", "due_date", "deleted", "version", "updated_at",
})

# New tasks arrive as one JSON array: one round trip and one statement per batch.
INSERT_TASKS = text("""
    INSERT INTO task_state (task_id, title, description, status, priority, due_date, deleted,
                            version, updated_at, created_by, created_at)
    SELECT task_id, title, description, status, priority, due_date, false, version, updated_at,
           created_by, created_at
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
        task_id bigint, title text, description text, status text, priority text,
        due_date date, version integer, updated_at timestamptz, created_by bigint,
        created_at timestamptz)
    ON CONFLICT (task_id) DO NOTHING
""")

# `TaskCreated` envelopes as they came from the stream, read by PostgreSQL: the row
# `new_task_row` makes of the same event (tests/integration/logger_service/
# test_created_rows.py compares them); a missing title or task id violates NOT NULL, which
# blames the event.
INSERT_ENCODED_TASKS = text("""
    INSERT INTO task_state (task_id, title, description, status, priority, due_date, deleted,
                            version, updated_at, created_by, created_at)
    SELECT e.task_id, d.title, d.description, coalesce(d.status, 'active'),
           coalesce(d.priority, 'medium'), d.due_date, false, coalesce(nullif(e.version, 0), 1),
           e.occurred_at, d.created_by, e.occurred_at
    FROM jsonb_to_recordset(CAST(:events AS jsonb))
         AS e(task_id bigint, version integer, occurred_at timestamptz, data jsonb)
    CROSS JOIN LATERAL jsonb_to_record(e.data)
         AS d(title text, description text, status text, priority text, due_date date,
              created_by bigint)
    ON CONFLICT (task_id) DO NOTHING
""")

INSERT_AUDIT = text("""
    INSERT INTO audit_log (event_id, task_id, previous_status, new_status, modified_by,
                           timestamp)
    SELECT :event_id, task_id, :previous_status, :new_status, :modified_by, :timestamp
    FROM task_state WHERE task_id = :task_id
    ON CONFLICT (event_id) DO NOTHING
""")


# One new number for every date a transaction changed. A date's numbers follow the commit
# order (its row is locked until the commit, so a later change waits and takes a larger
# one); across dates they need not, with several partitions applied at once, and nothing
# relies on that: a reader compares one date's version with that date's page.
MARK_CHANGED = text("""
    INSERT INTO date_versions (date, version)
    SELECT day, next.version
    FROM unnest(CAST(:days AS date[])) AS day,
         (SELECT nextval('date_version_seq') AS version) AS next
    ON CONFLICT (date) DO UPDATE SET version = excluded.version
    RETURNING date, version
""")


class SqlProjectionStore:
    """The projection tables, as seen from inside one open transaction; with a `partition`
    (`(p, count)`) the transfer copies only that partition's tasks."""

    def __init__(self, connection: Connection, partition: tuple[int, int] | None = None
                 ) -> None:
        self.connection = connection
        self.partition = partition

    def lock_checkpoint(self, name: str) -> int:
        """Return the projection's checkpoint, row-locked until the transaction ends."""
        return lock_checkpoint(self.connection, checkpoints, name)

    def advance_checkpoint(self, name: str, seq: int) -> None:
        """Store the new checkpoint; it commits with the effects."""
        advance_checkpoint(self.connection, checkpoints, name, seq)

    def insert_tasks(self, rows: list[dict[str, Any]]) -> None:
        """Insert new task replicas in one statement (a task already there is kept)."""
        if rows:
            self.connection.execute(INSERT_TASKS, {"rows": json.dumps(rows, default=str)})

    def insert_encoded_tasks(self, payloads: list[str]) -> None:
        """Insert new task replicas from `TaskCreated` JSON payloads, in one statement."""
        if payloads:
            self.connection.execute(INSERT_ENCODED_TASKS, {"events": f"[{','.join(payloads)}]"})

    def update_task(self, task_id: int, values: Mapping[str, Any]) -> str | None:
        """Update a task replica; return its status before the change (None if unknown)."""
        columns = [name for name in values if name in UPDATABLE]
        if not columns:
            return self.connection.execute(
                select(replicas.c.status).where(replicas.c.task_id == task_id)
            ).scalar()
        assignments = ", ".join(f"{name} = :{name}" for name in columns)
        statement = text(
            f"UPDATE task_state AS t SET {assignments} FROM task_state AS old "
            "WHERE t.task_id = :task_id AND old.task_id = t.task_id RETURNING old.status"
        )
        params = {name: values[name] for name in columns}
        return self.connection.execute(statement, dict(params, task_id=task_id)).scalar()

    def update_log_row(self, task_id: int, day: dt.date, values: Mapping[str, Any]) -> bool:
        """Carry a task's change into its TaskLogger row of `day`; True if there was one."""
        logged = {k: v for k, v in values.items() if k in LOGGED_FIELDS}
        if not logged:
            return False
        result = self.connection.execute(
            update(task_log).where(task_log.c.task_id == task_id, task_log.c.date == day)
            .values(**logged)
        )
        return result.rowcount > 0

    def add_audit(self, row: Mapping[str, Any]) -> None:
        """Record a status change once per event id, if the task is known."""
        self.connection.execute(INSERT_AUDIT, dict(row))

    def delete_log_rows(self, task_id: int) -> set[dt.date]:
        """Delete a task's TaskLogger rows; return the dates they were on."""
        days = self.connection.execute(
            delete(task_log).where(task_log.c.task_id == task_id).returning(task_log.c.date)
        ).scalars()
        return set(days)

    def purge_task(self, task_id: int) -> set[dt.date]:
        """Delete a task replica and its rows (audit by cascade); return the dates it was on."""
        touched = self.delete_log_rows(task_id)
        self.connection.execute(delete(replicas).where(replicas.c.task_id == task_id))
        return touched

    def transfer(self, day: dt.date, at: dt.datetime) -> int:
        """Copy every live active task into `day`'s log in one statement; return rows added."""
        source = select(
            replicas.c.task_id, replicas.c.title, replicas.c.description, replicas.c.status,
            replicas.c.priority, literal(day, task_log.c.date.type),
            literal(at, task_log.c.transferred_at.type),
        ).where(~replicas.c.deleted, replicas.c.status.in_(TRANSFERABLE_STATUSES))
        if self.partition is not None:
            partition, count = self.partition
            source = source.where(func.mod(replicas.c.task_id, count) == partition)
        statement = pg_insert(task_log).from_select(
            ["task_id", "title", "description", "status", "priority", "date", "transferred_at"],
            source,
        ).on_conflict_do_nothing(index_elements=["task_id", "date"])
        return int(self.connection.execute(statement).rowcount)

    def transfer_total(self, request: int, day: dt.date, count: int) -> int | None:
        """The tasks the transfer request `request` (its global seq) moved in total, once
        every partition has applied it (None before); `count` is this one's share."""
        if self.partition is None:
            return count
        statement = pg_insert(transfer_runs).values(
            request_seq=request, date=day, partitions=1, transferred=count)
        done, total = self.connection.execute(statement.on_conflict_do_update(
            index_elements=["request_seq"], set_={
                "partitions": transfer_runs.c.partitions + 1,
                "transferred": transfer_runs.c.transferred + statement.excluded.transferred},
        ).returning(transfer_runs.c.partitions, transfer_runs.c.transferred)).one()
        return int(total) if done >= self.partition[1] else None

    def record_skip(self, name: str, seq: int, error: str) -> None:
        """Remember that the event `seq` was skipped (its effect is missing)."""
        statement = pg_insert(skipped).values(name=name, seq=seq, error=error[:2000])
        self.connection.execute(statement.on_conflict_do_update(
            index_elements=["name", "seq"], set_={"error": statement.excluded.error}))

    def take_skip(self, name: str, seq: int) -> bool:
        """Forget a skipped event; True if it was recorded as skipped (its effect missing)."""
        result = self.connection.execute(
            delete(skipped).where(skipped.c.name == name, skipped.c.seq == seq)
        )
        return result.rowcount > 0

    def mark_changed(self, days: Iterable[dt.date]) -> dict[dt.date, int]:
        """Give the days a new version, committed with the change; return it per day."""
        rows = self.connection.execute(MARK_CHANGED, {"days": sorted(days)}).all()
        return {day: int(version) for day, version in rows}

    def task_version(self, task_id: int) -> int | None:
        """The version of a task in the replica (None when it is not there)."""
        return self.connection.execute(
            select(replicas.c.version).where(replicas.c.task_id == task_id)
        ).scalar()


@contextmanager
def savepoint(connection: Connection) -> Iterator[None]:
    """Undo the block's writes, and only those, when it raises (the transaction goes on)."""
    nested = connection.begin_nested()
    try:
        yield
    except Exception:
        nested.rollback()
        raise
    nested.commit()


def sql_transaction(engine: Engine, partition: tuple[int, int] | None = None
                    ) -> Callable[[], AbstractContextManager[SqlProjectionStore]]:
    """A unit-of-work factory: each call opens one transaction, committed on a clean exit."""

    @contextmanager
    def transaction() -> Iterator[SqlProjectionStore]:
        with engine.begin() as connection:
            yield SqlProjectionStore(connection, partition)

    return transaction


def versions_after(engine: Engine, version: int) -> dict[dt.date, int]:
    """The dates whose version is above `version`, with their versions."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(versions.c.date, versions.c.version).where(versions.c.version > version))
        return {day: int(number) for day, number in rows}


def read_checkpoint(engine: Engine, name: str) -> tuple[int, dt.datetime | None]:
    """The projection's checkpoint and when it last moved (0 and None before any event)."""
    with engine.connect() as connection:
        row = connection.execute(
            select(checkpoints.c.last_seq, checkpoints.c.updated_at)
            .where(checkpoints.c.name == name)
        ).first()
    return (int(row[0]), row[1]) if row else (0, None)
