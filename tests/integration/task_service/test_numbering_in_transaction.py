"""A command that finds no numbering step running numbers its events in its own transaction
(one commit); one that finds a step running commits them unnumbered and learns its
position from the step after its commit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import Engine

from services.task_service.adapters.event_store import APPEND_LOCK_KEY, SEQUENCE_CHUNK, Written
from services.task_service.adapters.task_creation import CREATE, create_with_event
from services.task_service.domain.model import Context, CreateTask, TaskState, UpdateTask
from services.task_service.service_layer.tasks import create_task, update_task
from services.task_service.service_layer.unit_of_work import UnitOfWork
from shared.events import Actor

CONTEXT = Context(Actor(7, "writer", "admin"), "numbering")
# The transaction that last wrote each row: the event's row (its seq set by an update, or
# given at insert) and the task's.
WRITERS = text("SELECT events.xmin::text, task_manager.xmin::text, events.seq FROM events "
               "JOIN task_manager ON task_manager.id = events.task_id "
               "WHERE events.task_id = :task AND events.version = :version")


def writers(engine: Engine, task_id: int, version: int) -> tuple[str, str, int | None]:
    with engine.connect() as connection:
        found = connection.execute(WRITERS, {"task": task_id, "version": version}).one()
    return found[0], found[1], found[2]


@contextmanager
def step_running(engine: Engine) -> Iterator[None]:
    """Another transaction holds the sequencing lock, as a numbering step does."""
    with engine.connect() as step:
        step.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK_KEY})
        yield
        step.rollback()


def committed_create(engine: Engine, title: str) -> tuple[TaskState, Written]:
    """The create's one statement, committed, without the step after it (which would wait
    for a step running)."""
    pooled = engine.raw_connection()
    try:
        return create_with_event(pooled, CreateTask(title), 7, CONTEXT, datetime.now(UTC),
                                 SEQUENCE_CHUNK)
    finally:
        pooled.close()


def test_an_uncontended_create_numbers_its_event_in_its_own_transaction(
        engine: Engine) -> None:
    done = create_task(UnitOfWork(engine), CreateTask("alone"), CONTEXT)
    event_writer, task_writer, seq = writers(engine, done.body["id"], 1)
    assert seq == done.position == 1
    assert event_writer == task_writer  # numbered at insert: no second transaction


def test_an_uncontended_update_numbers_its_events_in_its_own_transaction(
        engine: Engine) -> None:
    created = create_task(UnitOfWork(engine), CreateTask("before"), CONTEXT)
    done = update_task(UnitOfWork(engine), UpdateTask(created.body["id"], {"title": "after"},
                                                      expected_version=1), CONTEXT)
    event_writer, task_writer, seq = writers(engine, created.body["id"], 2)
    assert seq == done.position == 2
    assert event_writer == task_writer


def test_a_create_that_finds_a_step_running_is_numbered_after_its_commit(
        engine: Engine) -> None:
    assert create_task(UnitOfWork(engine), CreateTask("first"), CONTEXT).position == 1
    with step_running(engine):
        task, written = committed_create(engine, "contended")
        assert written.seq is None and written.row_id is not None  # committed, unnumbered
        assert writers(engine, task.id, 1)[2] is None
    with UnitOfWork(engine) as unit:
        assert unit.position(written) == 2
    event_writer, task_writer, seq = writers(engine, task.id, 1)
    assert seq == 2 and event_writer != task_writer


def prepared_here(connection: Connection) -> int:
    return int(connection.execute(text(
        "SELECT count(*) FROM pg_prepared_statements WHERE name = :name"),
        {"name": CREATE.name}).scalar_one())


def test_the_create_statement_is_prepared_once_per_connection_and_on_a_new_one(
        engine: Engine) -> None:
    single = create_engine(engine.url, pool_size=1, max_overflow=0)  # always that connection
    try:
        unit = UnitOfWork(single)
        for n in range(3):
            create_task(unit, CreateTask(f"task {n}"), CONTEXT)
        with single.connect() as connection:
            assert prepared_here(connection) == 1
            connection.invalidate()  # as a connection lost with its server session is
        assert create_task(unit, CreateTask("on a new connection"), CONTEXT).position == 4
        with single.connect() as connection:
            assert prepared_here(connection) == 1
    finally:
        single.dispose()


def test_a_create_never_numbers_itself_ahead_of_events_committed_before_it(
        engine: Engine) -> None:
    """More events wait for a seq than one step numbers: the create leaves its own to the
    step after its commit, which numbers them first."""
    waiting = []
    with step_running(engine):
        for n in range(3):
            waiting.append(committed_create(engine, f"waiting {n}")[0].id)
    unit = UnitOfWork(engine)
    unit.sequencer.chunk = 2  # the step inside the create numbers two of the three
    done = create_task(unit, CreateTask("after them"), CONTEXT)
    assert [writers(engine, task_id, 1)[2] for task_id in waiting] == [1, 2, 3]
    assert done.position == writers(engine, done.body["id"], 1)[2] == 4
