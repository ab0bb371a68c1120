"""SQLAlchemy models of the logger's projections: task replica, daily log, audit, checkpoints."""

from __future__ import annotations

import datetime as dt

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
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, WriteOnlyMapped, mapped_column, relationship


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


metadata = Base.metadata
