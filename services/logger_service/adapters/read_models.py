"""Reads of the projections for the query API (no domain objects: rows straight to JSON)."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import Boolean, ColumnElement, Select, Table, func, select
from sqlalchemy.engine import Engine

from services.logger_service.adapters.orm import (
    SEARCH_CONFIG,
    AuditEntry,
    DateVersion,
    TaskLogEntry,
    TaskReplica,
    priority_rank,
    search_document,
)
from services.logger_service.adapters.projection_store import read_checkpoint
from services.logger_service.service_layer.filters import TaskFilter, TaskOrder
from services.logger_service.service_layer.projection import PROJECTION_NAME
from shared.task_values import PRIORITIES

Row = dict[str, Any]
entries = cast(Table, TaskLogEntry.__table__)
audit = cast(Table, AuditEntry.__table__)
replicas = cast(Table, TaskReplica.__table__)

ENTRY_COLUMNS = (
    entries.c.id, entries.c.task_id, entries.c.title, entries.c.description,
    entries.c.status, entries.c.priority, entries.c.date, entries.c.transferred_at,
)
CURRENT_COLUMNS = (
    replicas.c.task_id.label("id"), replicas.c.title, replicas.c.description,
    replicas.c.status, replicas.c.priority, replicas.c.due_date, replicas.c.created_by,
    replicas.c.created_at, replicas.c.updated_at, replicas.c.version,
)
# What each sort field sorts by: the expression its index (orm.py) is built on.
SORT_KEYS: dict[str, ColumnElement[Any]] = {
    "due_date": replicas.c.due_date, "priority": priority_rank(replicas.c.priority),
    "created_at": replicas.c.created_at, "updated_at": replicas.c.updated_at,
}
AUDIT_COLUMNS = (
    audit.c.task_id, audit.c.previous_status, audit.c.new_status, audit.c.modified_by,
    audit.c.timestamp,
)


class ProjectionReader:
    """Pages of TaskLogger entries and audit entries."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def entries_page(self, day: dt.date | None, filters: TaskFilter, offset: int, limit: int
                     ) -> tuple[list[Row], int]:
        """One page of the entries (of one day, or all, newest day first) that the filter lets
        through, and their total."""
        conditions = task_conditions(entries, filters)
        if day is not None:
            conditions.append(entries.c.date == day)
        query = select(*ENTRY_COLUMNS).where(*conditions).order_by(entries.c.date.desc(),
                                                                     entries.c.id)
        return self._page(query, counted(entries, conditions), offset, limit)

    def current_task(self, task_id: int) -> Row | None:
        """One task as it is now (None when unknown or deleted)."""
        with self.engine.connect() as connection:
            row = connection.execute(select(*CURRENT_COLUMNS).where(
                replicas.c.task_id == task_id, ~replicas.c.deleted)).mappings().first()
        return dict(row) if row else None

    def current_tasks_page(self, filters: TaskFilter, order: TaskOrder, offset: int,
                           limit: int) -> tuple[list[Row], int]:
        """One page of the tasks not deleted that the filter lets through, and their total."""
        counting = counted(replicas, current_conditions(filters))
        return self._page(current_tasks_query(filters, order), counting, offset, limit)

    def entry(self, entry_id: int) -> Row | None:
        """One entry by id."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(*ENTRY_COLUMNS).where(entries.c.id == entry_id)
            ).mappings().first()
        return dict(row) if row else None

    def audit_page(self, task_id: int | None, offset: int, limit: int) -> tuple[list[Row], int]:
        """One page of audit entries (of one task, or all), oldest first."""
        conditions = [] if task_id is None else [audit.c.task_id == task_id]
        query = select(*AUDIT_COLUMNS).where(*conditions).order_by(audit.c.id)
        return self._page(query, counted(audit, conditions), offset, limit)

    def checkpoint(self) -> int:
        """The position of the event log the projections have applied."""
        return read_checkpoint(self.engine, PROJECTION_NAME)[0]

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


def counted(table: Table, conditions: list[ColumnElement[bool]]) -> Select[Any]:
    """How many rows of the table meet the conditions."""
    return select(func.count()).select_from(table).where(*conditions)


def task_conditions(table: Table, filters: TaskFilter) -> list[ColumnElement[bool]]:
    """What a filter's status, priority and text ask of a table of tasks: the replica, or the
    TaskLogger, whose rows hold a task's status, priority and text as they were that day."""
    columns = table.c
    found: list[ColumnElement[bool]] = []
    if filters.statuses:
        found.append(columns.status.in_(filters.statuses))
    if filters.priorities:
        found.append(columns.priority.in_(filters.priorities))
    if filters.text:
        query = func.websearch_to_tsquery(SEARCH_CONFIG, filters.text)
        document = search_document(columns.title, columns.description)
        found.append(document.op("@@", return_type=Boolean)(query))
    return found


def current_tasks_query(filters: TaskFilter, order: TaskOrder) -> Select[Any]:
    """The tasks not deleted that the filter lets through, in order (the task id last)."""
    key, tie = SORT_KEYS[order.field], replicas.c.task_id
    ordering = (key.desc(), tie.desc()) if order.descending else (key.asc(), tie.asc())
    conditions = current_conditions(filters)
    if order.field == "priority" and filters.priorities:
        # The priority filter once more, on the sort key: the walk of the sort's index then
        # starts at those priorities instead of filtering its way past all the others.
        conditions.append(key.in_([PRIORITIES.index(name) for name in filters.priorities]))
    return select(*CURRENT_COLUMNS).where(*conditions).order_by(*ordering)


def current_conditions(filters: TaskFilter) -> list[ColumnElement[bool]]:
    """What a filter asks of the replica, tasks not deleted only."""
    found = [~replicas.c.deleted, *task_conditions(replicas, filters)]
    if filters.created_by is not None:
        found.append(replicas.c.created_by == filters.created_by)
    if filters.due_from is not None:
        found.append(replicas.c.due_date >= filters.due_from)
    if filters.due_to is not None:
        found.append(replicas.c.due_date <= filters.due_to)
    return found
