"""Use cases of a task's past: its history (every event, oldest first) and the task as it was
at a time or a position of the event log, folded from its events by the domain's one fold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services.task_service.domain.model import TaskEvent, TaskNotFound, fold, snapshot, task_from
from shared.events import parse_timestamp

# A point of a task's history: an event position, a time, or None for the latest.
Point = int | datetime | None


def parse_point(raw: str) -> int | datetime:
    """A point as people write it: an event position (digits) or an ISO 8601 time (UTC
    when it has no offset); ValueError for anything else."""
    text = raw.strip()
    if text.isdigit():
        if len(text) > 18:  # past any bigint seq
            raise ValueError(f"{raw!r} is past any position of the event log")
        return int(text)
    return parse_timestamp(text)


class NotYetCreated(LookupError):
    """The task did not exist yet at the point asked for."""


class TaskEvents(Protocol):
    """What the use cases need from the event store."""

    def page(self, task_id: int, offset: int, limit: int) -> tuple[list[str], int] | None: ...
    def until(self, task_id: int, point: Point) -> list[TaskEvent] | None: ...


@dataclass(frozen=True)
class HistoryPage:
    """One page of a task's events, as envelope JSON, and how many it has in all."""

    events: list[str]
    total: int
    page: int
    per_page: int

    def json(self) -> str:
        """The page as a JSON array (the envelopes are already JSON)."""
        return "[" + ",".join(self.events) + "]"


def history(events: TaskEvents, task_id: int, page: int, per_page: int) -> HistoryPage:
    """A page of a current task's events, oldest first; TaskNotFound for any other task."""
    found = events.page(task_id, (page - 1) * per_page, per_page)
    if found is None:
        raise TaskNotFound(task_id)
    return HistoryPage(found[0], found[1], page, per_page)


def task_at(events: TaskEvents, task_id: int, point: Point) -> dict[str, Any]:
    """A current task as it was at a point (as it is, without one), as the API shows a task;
    TaskNotFound for a task that is not current, NotYetCreated before its creation."""
    until = events.until(task_id, point)
    if until is None:
        raise TaskNotFound(task_id)
    fields = fold(until).get(task_id)
    if fields is None:
        raise NotYetCreated(task_id)
    return snapshot(task_from(fields))
