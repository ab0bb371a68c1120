"""Use cases of the current tasks: one task as it is now, and filtered, sorted pages of them,
read from the logger's replica of every task (built from the events alone)."""

from __future__ import annotations

from typing import Any, Protocol

from services.logger_service.service_layer.filters import TaskFilter, TaskOrder
from services.logger_service.service_layer.queries import Page, Row, json_ready


class TaskNotFound(LookupError):
    """No current task has that id (never created, soft-deleted or purged)."""


class CurrentTasks(Protocol):
    """What the use cases need from the replica."""

    def current_task(self, task_id: int) -> Row | None: ...
    def current_tasks_page(self, filters: TaskFilter, order: TaskOrder, offset: int,
                           limit: int) -> tuple[list[Row], int]: ...


def get_task(reader: CurrentTasks, task_id: int) -> dict[str, Any]:
    """One task as it is now, or TaskNotFound."""
    row = reader.current_task(task_id)
    if row is None:
        raise TaskNotFound(task_id)
    return json_ready(row)


def list_tasks(reader: CurrentTasks, filters: TaskFilter, order: TaskOrder, page: int,
               per_page: int) -> Page:
    """One page of the tasks the filter lets through, in the order asked for."""
    rows, total = reader.current_tasks_page(filters, order, (page - 1) * per_page, per_page)
    return Page(total, page, per_page, rows=[json_ready(row) for row in rows])
