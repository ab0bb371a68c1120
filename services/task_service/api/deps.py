"""The objects the task views use, built by create_app and kept on the app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from services.task_service.adapters.stored_events import StoredEvents
from services.task_service.adapters.task_history import TaskHistory
from services.task_service.config import Settings
from services.task_service.service_layer.feed import WaitSlots
from services.task_service.service_layer.unit_of_work import UnitOfWork
from shared.http import provided
from shared.positions import AppliedPosition


@dataclass(frozen=True)
class TaskDeps:
    """What a request may need: a fresh unit of work and the service's settings (commands);
    the event log, tasks' histories, how far the log is committed and the feed's wait slots
    (reads of the event store)."""

    uow: Callable[[], UnitOfWork]
    settings: Settings
    log: StoredEvents
    history: TaskHistory
    applied: AppliedPosition
    feed_slots: WaitSlots


def deps() -> TaskDeps:
    """The dependencies of the current app."""
    return provided(TaskDeps)
