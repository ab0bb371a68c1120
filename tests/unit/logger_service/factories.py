"""Events as the task service emits them, numbered like the stream."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

from shared.events import Actor, EventEnvelope, new_event_id

ADMIN = Actor(id=1, username="admin", role="admin")
DAY = dt.date(2025, 4, 5)


@dataclass
class EventFactory:
    """Makes envelopes with consecutive seqs and per-task versions."""

    seq: itertools.count = field(default_factory=lambda: itertools.count(1))
    versions: dict[int, int] = field(default_factory=dict)
    at: dt.datetime = dt.datetime(2025, 4, 5, 9, 0, tzinfo=dt.UTC)

    def event(self, type_: str, task_id: int | None, data: dict[str, Any],
              at: dt.datetime | None = None) -> EventEnvelope:
        """Any event."""
        version = None
        if task_id is not None:
            version = self.versions.get(task_id, 0) + 1
            self.versions[task_id] = version
        seq, occurred_at = next(self.seq), at or self.at
        return EventEnvelope(
            event_id=str(new_event_id(seq, occurred_at)), seq=seq, type=type_, task_id=task_id,
            version=version, occurred_at=occurred_at, data=data, actor=ADMIN,
            correlation_id="req-1",
        )

    def created(self, task_id: int, title: str = "", status: str = "active",
                **fields: Any) -> EventEnvelope:
        """TaskCreated with the full task."""
        data = {"title": title or f"Task {task_id}", "description": f"About {task_id}",
                "status": status, "priority": "medium", "due_date": None,
                "created_by": 1, "created_at": self.at.isoformat()}
        data.update(fields)
        return self.event("TaskCreated", task_id, data)

    def updated(self, task_id: int, at: dt.datetime | None = None, **changes: Any
                ) -> EventEnvelope:
        """TaskUpdated with the changed fields."""
        return self.event("TaskUpdated", task_id, {"changes": changes}, at)

    def status(self, task_id: int, previous: str, new: str,
               at: dt.datetime | None = None) -> EventEnvelope:
        """TaskStatusChanged."""
        return self.event("TaskStatusChanged", task_id,
                          {"previous_status": previous, "new_status": new}, at)

    def soft_deleted(self, task_id: int) -> EventEnvelope:
        """TaskSoftDeleted."""
        return self.event("TaskSoftDeleted", task_id, {})

    def purged(self, task_id: int) -> EventEnvelope:
        """TaskPurged."""
        return self.event("TaskPurged", task_id, {})

    def transfer(self, day: dt.date = DAY) -> EventEnvelope:
        """DailyTransferRequested."""
        return self.event("DailyTransferRequested", None, {"date": day.isoformat()})
