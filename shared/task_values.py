"""The values a task's status and priority take, as the API and the events carry them."""

from __future__ import annotations

STATUSES = ("active", "in_progress", "completed", "cancelled")
PRIORITIES = ("low", "medium", "high")  # in rising order: sorting by priority follows it
