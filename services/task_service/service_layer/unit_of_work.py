"""The unit of work: one transaction around a command; commits explicitly, else rolls back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Generic, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.task_service.adapters.bulk_import import BulkTaskWriter
from services.task_service.adapters.event_store import EventStore, Sequencer, Written
from services.task_service.adapters.repository import IdempotencyStore, TaskRepository

Body = TypeVar("Body")


@dataclass(frozen=True)
class Committed(Generic[Body]):
    """What a command answers, and the position in the event log of its last event (a read
    given it as `min_seq` sees the change)."""

    body: Body
    position: int


class UnitOfWork:
    """Tasks, events and idempotency keys sharing one PostgreSQL transaction."""

    tasks: TaskRepository
    events: EventStore
    idempotency: IdempotencyStore
    imports: BulkTaskWriter
    session: Session

    def __init__(self, engine: Engine, idempotency_ttl: timedelta = timedelta(hours=24)) -> None:
        self.session_factory = sessionmaker(engine, expire_on_commit=False)
        self.idempotency_ttl = idempotency_ttl
        self.sequencer = Sequencer(engine)

    def __enter__(self) -> UnitOfWork:
        self.session = self.session_factory()
        self.tasks = TaskRepository(self.session)
        self.events = EventStore(self.session)
        self.idempotency = IdempotencyStore(self.session, self.idempotency_ttl)
        self.imports = BulkTaskWriter(self.session, self.events)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.session.rollback()
        self.session.close()

    def commit(self) -> None:
        """Commit the change and its events together."""
        self.session.commit()

    def position(self, written: Written) -> int:
        """After the commit: the seq of the last event written (numbering it now if the
        relay has not yet), or the head when none was."""
        return self.sequencer.position(written)

    def rollback(self) -> None:
        """Drop everything done in this unit."""
        self.session.rollback()
