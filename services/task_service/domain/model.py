"""The task domain: values, commands, the events a change produces, and domain errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from shared.events import Actor, format_timestamp

STATUSES = ("active", "in_progress", "completed", "cancelled")
PRIORITIES = ("low", "medium", "high")
EDITABLE_FIELDS = ("title", "description", "priority", "due_date")
TITLE_MAX = 200


class TaskNotFound(Exception):
    """The task does not exist, was soft-deleted or purged."""


class VersionMismatch(Exception):
    """The caller's `If-Match` names a version that is no longer current."""


class IdempotencyKeyReused(Exception):
    """An `Idempotency-Key` came back with a different request."""


class NothingToChange(Exception):
    """An update named no field at all."""


@dataclass(frozen=True)
class Context:
    """Who asks, and the request id that becomes the events' correlation id."""

    actor: Actor
    correlation_id: str | None = None


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended; the store adds seq, event id and metadata."""

    type: str
    task_id: int | None
    version: int | None
    data: dict[str, Any]


@dataclass(frozen=True)
class CreateTask:
    """Create a task."""

    title: str
    description: str | None = None
    status: str = "active"
    priority: str = "medium"
    due_date: date | None = None


@dataclass(frozen=True)
class UpdateTask:
    """Change any of a task's fields (status included), optionally only at a given version."""

    task_id: int
    changes: dict[str, Any] = field(default_factory=dict)
    expected_version: int | None = None


@dataclass(frozen=True)
class DeleteTask:
    """Soft-delete a task, or purge it for good."""

    task_id: int
    purge: bool = False
    expected_version: int | None = None


class TaskState(Protocol):
    """The attributes of a task that the domain reads and changes."""

    id: int
    title: str
    description: str | None
    status: str
    priority: str
    due_date: date | None
    created_by: int
    created_at: datetime
    updated_at: datetime
    version: int
    deleted_at: datetime | None


def format_date(value: date | None) -> str | None:
    """A date as `YYYY-MM-DD` (or None)."""
    return value.isoformat() if value else None


def created_event(task: TaskState) -> NewEvent:
    """The `TaskCreated` event of a new task."""
    return NewEvent("TaskCreated", task.id, task.version, {
        "title": task.title, "description": task.description, "status": task.status,
        "priority": task.priority, "due_date": format_date(task.due_date),
        "created_by": task.created_by,
    })


def check_version(task: TaskState, expected: int | None) -> None:
    """Raise VersionMismatch when the caller expects another version."""
    if expected is not None and expected != task.version:
        raise VersionMismatch(task.id)


def _event_value(name: str, value: Any) -> Any:
    return format_date(value) if name == "due_date" else value


def apply_update(task: TaskState, changes: dict[str, Any], now: datetime) -> list[NewEvent]:
    """Apply changes to a task; return `TaskUpdated` and/or `TaskStatusChanged` events."""
    if not changes:
        raise NothingToChange(task.id)
    events: list[NewEvent] = []
    edits = {k: v for k, v in changes.items() if k in EDITABLE_FIELDS and getattr(task, k) != v}
    if edits:
        previous = {k: _event_value(k, getattr(task, k)) for k in edits}
        for name, value in edits.items():
            setattr(task, name, value)
        task.version += 1
        events.append(NewEvent("TaskUpdated", task.id, task.version, {
            "changes": {k: _event_value(k, v) for k, v in edits.items()}, "previous": previous,
        }))
    new_status = changes.get("status")
    if new_status is not None and new_status != task.status:
        previous_status, task.status = task.status, new_status
        task.version += 1
        events.append(NewEvent("TaskStatusChanged", task.id, task.version, {
            "previous_status": previous_status, "new_status": new_status,
        }))
    if events:
        task.updated_at = now
    return events


def soft_delete(task: TaskState, now: datetime) -> NewEvent:
    """Mark a task deleted; return `TaskSoftDeleted`."""
    task.deleted_at = task.updated_at = now
    task.version += 1
    return NewEvent("TaskSoftDeleted", task.id, task.version, {"status": task.status})


def purged_event(task: TaskState) -> NewEvent:
    """The `TaskPurged` event of a task about to be removed."""
    return NewEvent("TaskPurged", task.id, task.version + 1, {})


def transfer_event(day: date, scheduled: bool = False) -> NewEvent:
    """The `DailyTransferRequested` event of one date (it belongs to no task).

    `scheduled` marks the run of the daily schedule, which happens once per date; every
    explicit request is an event of its own.
    """
    return NewEvent("DailyTransferRequested", None, None,
                    {"date": day.isoformat(), "scheduled": scheduled})


def snapshot(task: TaskState) -> dict[str, Any]:
    """The task as the API shows it."""
    return {
        "id": task.id, "title": task.title, "description": task.description,
        "status": task.status, "priority": task.priority, "due_date": format_date(task.due_date),
        "created_by": task.created_by, "created_at": format_timestamp(task.created_at),
        "updated_at": format_timestamp(task.updated_at), "version": task.version,
    }
