"""Repositories of the task state table and of idempotency keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from services.task_service.adapters.event_store import Written
from services.task_service.adapters.orm import IdempotencyRecord, TaskRecord
from services.task_service.domain.model import CreateTask

INSERT_CHUNK = 10_000
# The id sequence continues after the highest task id any event names (purged ones too).
_CONTINUE_IDS = text(
    "SELECT setval(pg_get_serial_sequence('task_manager', 'id'), m, true) "
    "FROM (SELECT max(task_id) AS m FROM events) AS latest WHERE m IS NOT NULL")


class TaskRepository:
    """Tasks by id, locked for the change about to be made."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, command: CreateTask, created_by: int, now: datetime) -> TaskRecord:
        """Insert a new task at version 1 and give it its id."""
        task = TaskRecord(**asdict(command), created_by=created_by, created_at=now,
                          updated_at=now, version=1)
        self.session.add(task)
        self.session.flush()
        return task

    def get_for_update(self, task_id: int, include_deleted: bool = False) -> TaskRecord | None:
        """The task row, locked until commit (None if missing or soft-deleted)."""
        query = select(TaskRecord).where(TaskRecord.id == task_id).with_for_update()
        if not include_deleted:
            query = query.where(TaskRecord.deleted_at.is_(None))
        return self.session.execute(query).scalar_one_or_none()

    def remove(self, task: TaskRecord) -> None:
        """Delete the task row for good."""
        self.session.delete(task)

    def lock_table(self) -> None:
        """Keep every other writer out of the table until commit (readers still read)."""
        self.session.execute(text("LOCK TABLE task_manager IN EXCLUSIVE MODE"))

    def replace_all(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Put `rows` in place of every task, and continue the ids after the highest known."""
        self.session.execute(delete(TaskRecord))
        for start in range(0, len(rows), INSERT_CHUNK):
            self.session.execute(insert(TaskRecord), rows[start:start + INSERT_CHUNK])
        self.session.execute(_CONTINUE_IDS)


@dataclass(frozen=True)
class StoredResponse:
    """The first response given to an idempotent request."""

    fingerprint: str
    status_code: int
    body: dict[str, Any]
    written: Written  # the first request's last event (neither part: stored before positions)


class IdempotencyStore:
    """Claims `(user, key)` pairs inside the command's transaction."""

    def __init__(self, session: Session, ttl: timedelta) -> None:
        self.session = session
        self.ttl = ttl

    def claim(self, user_id: int, key: str, fingerprint: str, now: datetime
              ) -> StoredResponse | None:
        """Claim the key, or return the response stored for it (waiting for its writer)."""
        self.session.execute(delete(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key,
            IdempotencyRecord.created_at < now - self.ttl,
        ))
        claimed = self.session.execute(
            pg_insert(IdempotencyRecord)
            .values(user_id=user_id, key=key, fingerprint=fingerprint, created_at=now)
            .on_conflict_do_nothing()
            .returning(IdempotencyRecord.user_id)
        ).first()
        if claimed is not None:
            return None
        row = self.session.execute(select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key,
        )).scalar_one()
        return StoredResponse(row.fingerprint, row.status_code or 0, row.response or {},
                              Written(row.event_position, row.last_event_id))

    def record(self, user_id: int, key: str, status_code: int, body: dict[str, Any],
               written: Written) -> None:
        """Store the response of a claimed key and where its last event is (its seq, or its
        id until it is numbered), in the same transaction as its effect."""
        row = self.session.get(IdempotencyRecord, (user_id, key))
        if row is not None:
            row.status_code, row.response = status_code, body
            row.event_position, row.last_event_id = written.seq, written.row_id

    def purge_expired(self, now: datetime) -> int:
        """Delete keys older than the retention period; return how many."""
        result = self.session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now - self.ttl)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
