"""The task domain: values, commands, the events a change produces, what each event does
to its task (the one fold, for commands and rebuilds alike), and domain errors."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any, Protocol, cast

from shared.events import Actor, format_timestamp

# The values of a task's status and priority are the contract's (re-exported here).
from shared.task_values import PRIORITIES as PRIORITIES
from shared.task_values import STATUSES as STATUSES

EDITABLE_FIELDS = ("title", "description", "priority", "due_date")
# The data of `TaskCreated`: the fields a new task is given (the bulk import's SQL builds the
# same object from this tuple).
CREATED_FIELDS = ("title", "description", "status", "priority", "due_date", "created_by")
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


def task_from(fields: Mapping[str, Any]) -> TaskState:
    """A task's fields as a `TaskState`: a plain value, with nothing to track or save (an ORM
    instance took as long to build as a create's statement parameters)."""
    return cast(TaskState, SimpleNamespace(**fields))


# A stored task event: type, task id, version, data, occurred_at.
TaskEvent = tuple[str, int, int, Mapping[str, Any], datetime]
TaskFields = dict[str, Any]


def format_date(value: date | None) -> str | None:
    """A date as `YYYY-MM-DD` (or None)."""
    return value.isoformat() if value else None


def parse_date(value: str | None) -> date | None:
    """A `YYYY-MM-DD` date (or None)."""
    return date.fromisoformat(value) if value else None


def _event_value(name: str, value: Any) -> Any:
    return format_date(value) if name == "due_date" else value


def _task_fields(values: Mapping[str, Any]) -> TaskFields:
    """Fields as an event carries them, as the task holds them (dates parsed)."""
    fields = dict(values)
    if "due_date" in fields:
        fields["due_date"] = parse_date(fields["due_date"])
    return fields


def created_event(task: TaskState) -> NewEvent:
    """The `TaskCreated` event of a new task."""
    return NewEvent("TaskCreated", task.id, task.version, {
        name: _event_value(name, getattr(task, name)) for name in CREATED_FIELDS})


def _created(data: Mapping[str, Any], at: datetime) -> TaskFields:
    fields = _task_fields(data)
    fields["created_at"], fields["deleted_at"] = at, None
    return fields


def _updated(data: Mapping[str, Any], at: datetime) -> TaskFields:
    return _task_fields(data["changes"])


def _status_changed(data: Mapping[str, Any], at: datetime) -> TaskFields:
    return {"status": data["new_status"]}


def _soft_deleted(data: Mapping[str, Any], at: datetime) -> TaskFields:
    return {"deleted_at": at}


def _no_fields(data: Mapping[str, Any], at: datetime) -> TaskFields:
    return {}


# What each event sets on its task, beside the version and `updated_at` every event sets.
EFFECTS: dict[str, Callable[[Mapping[str, Any], datetime], TaskFields]] = {
    "TaskCreated": _created,
    "TaskUpdated": _updated,
    "TaskStatusChanged": _status_changed,
    "TaskSoftDeleted": _soft_deleted,
}


def task_changes(kind: str, version: int, data: Mapping[str, Any], at: datetime
                 ) -> TaskFields:
    """The fields one event sets on its task (types without an effect set only the version)."""
    fields = EFFECTS.get(kind, _no_fields)(data, at)
    fields["version"], fields["updated_at"] = version, at
    return fields


def apply_event(task: TaskState, kind: str, version: int, data: Mapping[str, Any],
                at: datetime) -> None:
    """Change a task as one event says."""
    for name, value in task_changes(kind, version, data, at).items():
        setattr(task, name, value)


def fold(events: Iterable[TaskEvent]) -> dict[int, TaskFields]:
    """The fields of every task that events in seq order leave, by id (purged ones gone)."""
    tasks: dict[int, TaskFields] = {}
    for kind, task_id, version, data, at in events:
        if kind == "TaskPurged":
            tasks.pop(task_id, None)
            continue
        if kind == "TaskCreated":
            tasks[task_id] = {"id": task_id}
        tasks[task_id].update(task_changes(kind, version, data, at))
    return tasks


def _record(task: TaskState, kind: str, data: dict[str, Any], now: datetime) -> NewEvent:
    """Apply a new event of the task's next version to it, and return the event."""
    version = task.version + 1
    apply_event(task, kind, version, data, now)
    return NewEvent(kind, task.id, version, data)


def check_version(task: TaskState, expected: int | None) -> None:
    """Raise VersionMismatch when the caller expects another version."""
    if expected is not None and expected != task.version:
        raise VersionMismatch(task.id)


def apply_update(task: TaskState, changes: dict[str, Any], now: datetime) -> list[NewEvent]:
    """Apply changes to a task; return `TaskUpdated` and/or `TaskStatusChanged` events."""
    if not changes:
        raise NothingToChange(task.id)
    events: list[NewEvent] = []
    edits = {k: v for k, v in changes.items() if k in EDITABLE_FIELDS and getattr(task, k) != v}
    if edits:
        events.append(_record(task, "TaskUpdated", {
            "changes": {k: _event_value(k, v) for k, v in edits.items()},
            "previous": {k: _event_value(k, getattr(task, k)) for k in edits},
        }, now))
    new_status = changes.get("status")
    if new_status is not None and new_status != task.status:
        events.append(_record(task, "TaskStatusChanged", {
            "previous_status": task.status, "new_status": new_status}, now))
    return events


def soft_delete(task: TaskState, now: datetime) -> NewEvent:
    """Mark a task deleted; return `TaskSoftDeleted`."""
    return _record(task, "TaskSoftDeleted", {"status": task.status}, now)


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
