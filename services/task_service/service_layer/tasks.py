"""Task commands: create, update (fields and status), soft delete, purge."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from services.task_service.adapters.orm import TaskRecord
from services.task_service.domain.model import (
    Context,
    CreateTask,
    DeleteTask,
    TaskNotFound,
    UpdateTask,
    apply_update,
    check_version,
    created_event,
    purged_event,
    snapshot,
    soft_delete,
)
from services.task_service.service_layer.idempotency import IdempotentRequest, once_per_key
from services.task_service.service_layer.unit_of_work import Committed, UnitOfWork

Clock = Callable[[], datetime]
SOFT_DELETED = {"message": "Task soft deleted successfully"}
PURGED = {"message": "Task purged"}


def utcnow() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def create_task(uow: UnitOfWork, command: CreateTask, context: Context,
                idempotency: IdempotentRequest | None = None, clock: Clock = utcnow,
                ) -> Committed[dict[str, Any]]:
    """Store a new task and its `TaskCreated` event in one transaction."""
    now = clock()
    if idempotency is None:  # nothing else to write: one statement does it all
        task, position = uow.create_at_once(command, _actor_id(context), context, now)
        return Committed(snapshot(task), position)

    def create() -> dict[str, Any]:
        task = uow.tasks.create(command, _actor_id(context), now)
        uow.events.append([created_event(task)], context, now)
        return snapshot(task)

    return once_per_key(uow, idempotency, 201, now, create)


def update_task(uow: UnitOfWork, command: UpdateTask, context: Context, clock: Clock = utcnow,
                ) -> Committed[dict[str, Any]]:
    """Change a task's fields and/or status, with their events, if the version matches."""
    now = clock()
    with uow:
        task = _locked(uow, command.task_id, command.expected_version)
        uow.events.append(apply_update(task, command.changes, now), context, now)
        uow.commit()
        return Committed(snapshot(task), uow.position(uow.events.written))


def delete_task(uow: UnitOfWork, command: DeleteTask, context: Context, clock: Clock = utcnow,
                ) -> Committed[dict[str, str]]:
    """Soft-delete a task (its events stay), or purge it (a purge also takes deleted ones)."""
    now = clock()
    with uow:
        task = _locked(uow, command.task_id, command.expected_version, command.purge)
        if command.purge:
            uow.events.append([purged_event(task)], context, now)
            uow.tasks.remove(task)
        else:
            uow.events.append([soft_delete(task, now)], context, now)
        uow.commit()
        return Committed(PURGED if command.purge else SOFT_DELETED,
                         uow.position(uow.events.written))


def _locked(uow: UnitOfWork, task_id: int, expected_version: int | None,
            include_deleted: bool = False) -> TaskRecord:
    """The task, locked for this transaction, at the version the caller expects."""
    task = uow.tasks.get_for_update(task_id, include_deleted)
    if task is None:
        raise TaskNotFound(task_id)
    check_version(task, expected_version)
    return task


def _actor_id(context: Context) -> int:
    return int(context.actor.id or 0)
