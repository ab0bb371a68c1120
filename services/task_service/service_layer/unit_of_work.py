"""The unit of work: one transaction around a command; commits explicitly, else rolls back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Generic, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection

from services.task_service.adapters.bulk_import import BulkTaskWriter
from services.task_service.adapters.event_store import EventStore, Written
from services.task_service.adapters.repository import IdempotencyStore, TaskRepository
from services.task_service.adapters.sequencer import Sequencer
from services.task_service.adapters.task_creation import create_with_event
from services.task_service.domain.model import Context, CreateTask, TaskState
from shared.outages import is_outage

Body = TypeVar("Body")


@dataclass(frozen=True)
class Committed(Generic[Body]):
    """What a command answers, and the position in the event log of its last event (a read
    given it as `min_seq` sees the change); None when a bulk writer held the numbering (the
    change is committed, and numbered when that writer commits)."""

    body: Body
    position: int | None


class UnitOfWork:
    """Tasks, events and idempotency keys sharing one PostgreSQL transaction."""

    tasks: TaskRepository
    events: EventStore
    idempotency: IdempotencyStore
    imports: BulkTaskWriter
    session: Session

    def __init__(self, engine: Engine, idempotency_ttl: timedelta = timedelta(hours=24)) -> None:
        self.engine = engine
        self.idempotency_ttl = idempotency_ttl
        self.sequencer = Sequencer(engine)

    def __enter__(self) -> UnitOfWork:
        # One pooled connection for the whole unit (one checkout, one pre-ping): the command's
        # transaction, then the numbering step that tells the command its position.
        self.connection = self.engine.connect()
        self.session = Session(bind=self.connection, expire_on_commit=False)
        self.tasks = TaskRepository(self.session)
        self.events = EventStore(self.session)
        self.idempotency = IdempotencyStore(self.session, self.idempotency_ttl)
        self.imports = BulkTaskWriter(self.session, self.events)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None and is_outage(exc):  # maybe lost beneath SQLAlchemy (a raw step)
            self.connection.invalidate()
        self.session.rollback()
        self.session.close()
        self.connection.close()

    def commit(self) -> None:
        """Commit the change and its events together, numbered in the same transaction when
        no numbering step is running (else by the step after the commit, `position`)."""
        self.events.number_before_commit()
        self.session.commit()

    def create_at_once(self, command: CreateTask, created_by: int, context: Context,
                       now: datetime) -> tuple[TaskState, int | None]:
        """Create a task and its event in one statement, committed, numbered in the same
        round trip when no step is running, else by the step after the commit; the task and
        its event's position (`position`). Outside `with`: it runs on a pooled connection
        of its own, without the ORM session and SQLAlchemy connection it never uses (a
        fifth of a create's CPU among 16 writers)."""
        pooled = self.engine.raw_connection()
        try:
            task, written = create_with_event(pooled, command, created_by, context, now,
                                              self.sequencer.chunk)
            return task, self._position(written, pooled, pooled.invalidate)
        except BaseException as exc:
            if is_outage(exc) and pooled.is_valid:  # lost: not to be handed out again
                pooled.invalidate()
            raise
        finally:
            pooled.close()

    def position(self, written: Written) -> int | None:
        """After the commit (or instead of one): the seq of the last event written (numbering
        it now if the relay has not yet), or the head when none was; None, without waiting,
        while a bulk writer (an import) holds the numbering."""
        self.session.rollback()  # nothing left to keep: the step is a transaction of its own
        return self._position(written, self.connection.connection, self.connection.invalidate)

    def _position(self, written: Written, pooled: PoolProxiedConnection,
                  invalidate: Callable[[], None]) -> int | None:
        try:
            return self.sequencer.position(written, pooled)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        # The change is committed and only its connection was lost: a 503 would have the
        # client send it again, so look for its position once more on a fresh connection.
        invalidate()
        return self.sequencer.position(written)

    def rollback(self) -> None:
        """Drop everything done in this unit."""
        self.session.rollback()
