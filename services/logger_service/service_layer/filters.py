"""Which tasks (or TaskLogger entries) a list shows, and in what order."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

SORT_FIELDS = ("due_date", "priority", "created_at", "updated_at")


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks a list shows; every part is optional and the parts combine with AND."""

    statuses: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()
    created_by: int | None = None
    due_from: dt.date | None = None
    due_to: dt.date | None = None
    text: str | None = None  # full-text search over title and description

    @property
    def empty(self) -> bool:
        """True when the filter lets every task through."""
        return self == TaskFilter()


@dataclass(frozen=True)
class TaskOrder:
    """How a list is sorted: by one of SORT_FIELDS, then by task id, in one direction."""

    field: str = "created_at"
    descending: bool = True
