"""The task domain and the state fold, without I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import pytest
from flask import Flask

from services.task_service.api.request_context import NO_VERSION, expected_version
from services.task_service.config import Settings
from services.task_service.domain.model import (
    NewEvent,
    NothingToChange,
    TaskEvent,
    VersionMismatch,
    apply_update,
    check_version,
    created_event,
    fold,
    soft_delete,
)
from services.task_service.entrypoints.celery_app import celery_config
from shared.settings import CommonSettings

T0 = datetime(2025, 1, 1, tzinfo=UTC)
T1 = datetime(2025, 1, 2, tzinfo=UTC)


@dataclass
class Task:
    """A task's attributes, as the domain sees them."""

    id: int = 1
    title: str = "a"
    description: str | None = None
    status: str = "active"
    priority: str = "medium"
    due_date: date | None = None
    created_by: int = 9
    created_at: datetime = T0
    updated_at: datetime = T0
    version: int = 1
    deleted_at: datetime | None = None


def test_update_reports_only_changed_fields_and_bumps_version_per_event() -> None:
    """Unchanged values make no event; status gets its own event."""
    task = Task()
    events = apply_update(task, {"title": "a", "due_date": date(2025, 3, 1),
                                 "status": "completed"}, T1)
    assert [(e.type, e.version, e.data) for e in events] == [
        ("TaskUpdated", 2, {"changes": {"due_date": "2025-03-01"}, "previous": {"due_date": None}}),
        ("TaskStatusChanged", 3, {"previous_status": "active", "new_status": "completed"}),
    ]
    assert (task.version, task.updated_at, task.status) == (3, T1, "completed")
    assert apply_update(task, {"title": "a"}, T0) == [] and task.updated_at == T1


def test_empty_update_and_stale_version_are_refused() -> None:
    """No fields → NothingToChange; another version → VersionMismatch."""
    with pytest.raises(NothingToChange):
        apply_update(Task(), {}, T1)
    with pytest.raises(VersionMismatch):
        check_version(Task(version=2), 1)
    check_version(Task(version=2), None)
    check_version(Task(version=2), 2)


def test_fold_of_the_events_gives_the_state() -> None:
    """Created, updated, status, soft delete and purge fold into the same state."""
    task = Task()
    created = created_event(task)
    updates = apply_update(task, {"title": "b", "status": "in_progress"}, T1)
    deleted = soft_delete(task, T1)
    stream = [(created.type, 1, created.version, created.data, T0)] + [
        (e.type, 1, e.version, e.data, T1) for e in [*updates, deleted]]
    state = fold(stream)
    assert state[1] == {**vars(task)}
    assert fold([*stream, ("TaskPurged", 1, 5, {}, T1)]) == {}


def stored(events: list[NewEvent]) -> list[TaskEvent]:
    """Events of task 1 as the store keeps them: created at T0, the rest at T1."""
    return [(e.type, 1, e.version or 0, e.data, T0 if e.version == 1 else T1) for e in events]


def test_commands_and_the_fold_of_their_events_leave_the_same_task() -> None:
    """Every editable field, dates included, changes the same way on both sides."""
    task = Task()
    events = [created_event(task)]
    events += apply_update(task, {"title": "b", "description": "d", "priority": "high",
                                  "due_date": date(2025, 3, 1), "status": "completed"}, T1)
    assert (task.due_date, task.version, task.updated_at) == (date(2025, 3, 1), 3, T1)
    assert fold(stored(events))[1] == vars(task)
    events += [*apply_update(task, {"due_date": None}, T1), soft_delete(task, T1)]
    assert fold(stored(events))[1] == vars(task)
    assert task.due_date is None and task.deleted_at == T1


def test_if_match_parsing() -> None:
    """Quoted, weak, bare, star and garbage If-Match values."""
    app = Flask(__name__)
    cases = {'"3"': 3, 'W/"4"': 4, "5": 5, "*": None, "": None, '"x"': NO_VERSION}
    for header, expected in cases.items():
        with app.test_request_context(headers={"If-Match": header} if header else {}):
            assert expected_version() == expected


def test_celery_config_has_the_schedule_and_namespace() -> None:
    """Beat checks every TRANSFER_CHECK_SECONDS for the run due at TRANSFER_TIME in its zone."""
    common = CommonSettings("test", "redis://x", "ns", "INFO", "text", "i", "a", "EdDSA", "u",
                            1.0, 1, 1, 1, 0.1)
    config = celery_config(Settings(common, "postgresql://x/y", time(23, 45), "Asia/Tokyo"))
    entry = config["beat_schedule"]["daily-transfer"]
    assert (entry["schedule"], entry["options"]["expires"]) == (60.0, 120.0)
    assert (config["timezone"], config["taskstream_transfer_time"]) == ("Asia/Tokyo", "23:45")
    options = config["broker_transport_options"]
    assert options["global_keyprefix"] == "ns:celery:"
    assert options["visibility_timeout"] == 3600 and config["task_acks_late"]
