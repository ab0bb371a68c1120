"""SQLAlchemy models of the logger's projections: task replica, daily log, audit, checkpoints."""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Sequence,
    String,
    Table,
    Text,
    UniqueConstraint,
    case,
    func,
    literal,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.orm import DeclarativeBase, Mapped, WriteOnlyMapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement, Grouping

from shared.task_values import PRIORITIES


class Base(DeclarativeBase):
    """Declarative base of the logger database."""


class TaskReplica(Base):
    """The logger's replica of one task, built only from its events (table `task_state`)."""

    __tablename__ = "task_state"

    task_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    priority: Mapped[str] = mapped_column(String(10))
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # From `TaskCreated` (empty for tasks projected before these columns existed, until a
    # `projections rebuild`).
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    log_entries: WriteOnlyMapped[TaskLogEntry] = relationship(
        back_populates="task", cascade="all, delete-orphan", passive_deletes=True
    )
    audit_entries: WriteOnlyMapped[AuditEntry] = relationship(
        back_populates="task", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        # The daily transfer selects live tasks by status.
        Index("ix_task_state_transferable", "status", postgresql_where="NOT deleted"),
    )


class TaskLogEntry(Base):
    """One task as it stood on one transfer date (the TaskLogger)."""

    __tablename__ = "task_logger"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("task_state.task_id", ondelete="CASCADE")
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    priority: Mapped[str] = mapped_column(String(10))
    date: Mapped[dt.date] = mapped_column(Date)
    transferred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    task: Mapped[TaskReplica] = relationship(back_populates="log_entries", lazy="raise")

    __table_args__ = (
        UniqueConstraint("task_id", "date", name="uq_task_logger_task_date"),
    )


# Pages are read newest date first, then by id; a date page is one range of this index.
Index("ix_task_logger_date", TaskLogEntry.date.desc(), TaskLogEntry.id)

# Full-text search over a task's title and description (PostgreSQL's `english` configuration).
SEARCH_CONFIG = "english"


def search_document(title: ColumnElement[str], description: ColumnElement[str | None]
                    ) -> ColumnElement[object]:
    """The `tsvector` a task's text is searched by; its index is built on the same expression."""
    text = func.coalesce(title, "").op("||")(" ").op("||")(func.coalesce(description, ""))
    return func.to_tsvector(sql_cast(literal(SEARCH_CONFIG), REGCONFIG), text)


def priority_rank(priority: ColumnElement[str]) -> ColumnElement[int]:
    """A priority as a number that sorts as the priorities rise (low 0, medium 1, high 2)."""
    return Grouping(case({name: rank for rank, name in enumerate(PRIORITIES)}, value=priority))


LIVE = "NOT deleted"
_replica = cast(Table, TaskReplica.__table__).c
# The current tasks are listed sorted by any of these, each walked in either direction; the
# task id breaks ties. Only tasks not deleted are ever listed, so the indexes hold only those.
for _name, _key in (("due_date", _replica.due_date),
                    ("priority", priority_rank(_replica.priority)),
                    ("created_at", _replica.created_at),
                    ("updated_at", _replica.updated_at),
                    ("created_by", _replica.created_by)):
    Index(f"ix_task_state_{_name}", _key, _replica.task_id, postgresql_where=LIVE)
Index("ix_task_state_search", search_document(_replica.title, _replica.description),
      postgresql_using="gin", postgresql_where=LIVE)
# A list's X-Total-Count of a status/priority filter, counted from this index alone (an
# index-only scan) instead of the whole table.
Index("ix_task_state_status_priority", _replica.status, _replica.priority,
      postgresql_where=LIVE)


class AuditEntry(Base):
    """One status change of a task, recorded once per event."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    task_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("task_state.task_id", ondelete="CASCADE")
    )
    previous_status: Mapped[str | None] = mapped_column(String(20))
    new_status: Mapped[str] = mapped_column(String(20))
    modified_by: Mapped[str | None] = mapped_column(String(150))
    timestamp: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    task: Mapped[TaskReplica] = relationship(back_populates="audit_entries", lazy="raise")

    __table_args__ = (Index("ix_audit_log_task_id", "task_id", "id"),)


class Checkpoint(Base):
    """The last event seq a projection has applied, committed with the effect."""

    __tablename__ = "projection_checkpoints"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class SkippedEvent(Base):
    """An event the projection skipped past (dead-lettered); deleted when it is retried.

    It lives beside the projection's tables (and moves with them in a rebuild), so "is this
    event's effect missing from these tables?" is answered in the same transaction as a retry.
    """

    __tablename__ = "projection_skipped"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    error: Mapped[str] = mapped_column(Text)
    skipped_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


# Numbers the changes of TaskLogger dates, in commit order (taken under the checkpoint lock).
DATE_VERSIONS = Sequence("date_version_seq", metadata=Base.metadata)


class DateVersion(Base):
    """The version a TaskLogger date's cached pages must carry to be served.

    Every transaction that changes the date's rows gives it a new number from
    `date_version_seq`, in that transaction, so the version is durable and only grows; the
    projector copies it to Redis after the commit (and again until Redis has it).
    """

    __tablename__ = "date_versions"

    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, index=True)


class TransferRun(Base):
    """A daily transfer request of a partitioned log: how many partitions applied it so far
    and how many tasks they transferred (the total is logged once, by the last)."""

    __tablename__ = "transfer_runs"

    request_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    date: Mapped[dt.date] = mapped_column(Date)
    partitions: Mapped[int] = mapped_column(Integer)
    transferred: Mapped[int] = mapped_column(BigInteger)


metadata = Base.metadata
