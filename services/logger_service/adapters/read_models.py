"""Reads of the projections for the query API (no domain objects: rows straight to JSON)."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import Select, Table, func, select
from sqlalchemy.engine import Engine

from services.logger_service.adapters.orm import AuditEntry, DateVersion, TaskLogEntry

Row = dict[str, Any]
entries = cast(Table, TaskLogEntry.__table__)
audit = cast(Table, AuditEntry.__table__)

ENTRY_COLUMNS = (
    entries.c.id, entries.c.task_id, entries.c.title, entries.c.description,
    entries.c.status, entries.c.priority, entries.c.date, entries.c.transferred_at,
)
AUDIT_COLUMNS = (
    audit.c.task_id, audit.c.previous_status, audit.c.new_status, audit.c.modified_by,
    audit.c.timestamp,
)


class ProjectionReader:
    """Pages of TaskLogger entries and audit entries."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def entries_page(self, day: dt.date | None, offset: int, limit: int) -> tuple[list[Row], int]:
        """One page of entries (of one day, or all, newest day first) and the total."""
        query = select(*ENTRY_COLUMNS).order_by(entries.c.date.desc(), entries.c.id)
        counted = select(func.count()).select_from(entries)
        if day is not None:
            query = query.where(entries.c.date == day)
            counted = counted.where(entries.c.date == day)
        return self._page(query, counted, offset, limit)

    def entry(self, entry_id: int) -> Row | None:
        """One entry by id."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(*ENTRY_COLUMNS).where(entries.c.id == entry_id)
            ).mappings().first()
        return dict(row) if row else None

    def audit_page(self, task_id: int | None, offset: int, limit: int) -> tuple[list[Row], int]:
        """One page of audit entries (of one task, or all), oldest first."""
        query = select(*AUDIT_COLUMNS).order_by(audit.c.id)
        counted = select(func.count()).select_from(audit)
        if task_id is not None:
            query = query.where(audit.c.task_id == task_id)
            counted = counted.where(audit.c.task_id == task_id)
        return self._page(query, counted, offset, limit)

    def date_version(self, day: dt.date) -> int:
        """The version of a date's rows (0 before they ever changed), for the page cache."""
        with self.engine.connect() as connection:
            found = connection.execute(
                select(DateVersion.version).where(DateVersion.date == day)).scalar()
        return int(found or 0)

    def _page(self, query: Select, counted: Select, offset: int, limit: int
              ) -> tuple[list[Row], int]:
        with self.engine.connect() as connection:
            total = int(connection.execute(counted).scalar_one())
            rows = connection.execute(query.offset(offset).limit(limit)).mappings().all()
        return [dict(row) for row in rows], total
