"""The objects the task views use, built by create_app and kept on the app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from services.task_service.config import Settings
from services.task_service.service_layer.unit_of_work import UnitOfWork
from shared.http import provided


@dataclass(frozen=True)
class TaskDeps:
    """What a request may need: a fresh unit of work, and the service's settings."""

    uow: Callable[[], UnitOfWork]
    settings: Settings


def deps() -> TaskDeps:
    """The dependencies of the current app."""
    return provided(TaskDeps)
