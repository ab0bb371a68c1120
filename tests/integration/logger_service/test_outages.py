"""The projector against real database faults: killed sessions, lock timeouts, a lost lock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from services.logger_service.adapters.projection_store import sql_transaction
from services.logger_service.service_layer.projection import LoggerBatch, LoggerProjection
from shared.db import PostgresAdvisoryLock
from shared.stream.consumer import StreamConsumer
from shared.stream.options import ConsumerOptions
from shared.stream.redis_bus import RedisStreamBus
from testbed.polling import wait_for
from tests.integration.logger_service.conftest import table
from tests.unit.logger_service.factories import EventFactory

APPLIER = "projector-under-test"


@pytest.fixture
def projector_engine(logger_url: str) -> Iterator[Callable[..., Engine]]:
    """Engines on the logger database whose sessions the test can find by name."""
    made: list[Engine] = []

    def make(**settings: str) -> Engine:
        connect_args = {"application_name": APPLIER}
        if settings:
            connect_args["options"] = " ".join(f"-c {k}={v}" for k, v in settings.items())
        made.append(create_engine(logger_url, pool_pre_ping=True, connect_args=connect_args))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


@contextmanager
def running(consumer: StreamConsumer) -> Iterator[StreamConsumer]:
    """Run a consumer's loop in a thread until the block ends."""
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield consumer
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "the consumer did not stop"


def applier(bus: RedisStreamBus, engine: Engine, name: str = "p1", **options: object
            ) -> StreamConsumer:
    """A projector consumer that gives an event up after two deliveries."""
    settings = ConsumerOptions(group="logger", consumer=name, block_ms=50, max_deliveries=2,
                               retry_delay_seconds=0.05, lock_poll_seconds=0.05,
                               **options)  # type: ignore[arg-type]
    projection = LoggerProjection(sql_transaction(engine))
    bus.ensure_group("logger")
    return StreamConsumer(bus, projection, settings)


@contextmanager
def task_row_locked(engine: Engine, task_id: int) -> Iterator[None]:
    """Hold a row lock on the task's replica, so applying a change to it waits mid-batch."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1 FROM task_state WHERE task_id = :id FOR UPDATE"),
                           {"id": task_id})
        yield
        connection.rollback()


def blocked_applier(engine: Engine, killed: frozenset[int] = frozenset()) -> int | None:
    """The pid of the projector's session while it waits for a lock, else None.

    A session already terminated may linger in pg_stat_activity for a moment: `killed`
    names those, so that each termination hits a new session.
    """
    with engine.connect() as connection:
        pids = connection.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE application_name = :name "
            "AND wait_event_type = 'Lock'"), {"name": APPLIER}).scalars()
        return next((pid for pid in pids if pid not in killed), None)


def terminate(engine: Engine, pid: int) -> None:
    """pg_terminate_backend: the session dies as in a server restart (SQLSTATE 57P01)."""
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def checkpoint(engine: Engine) -> int:
    rows = table(engine, "SELECT last_seq FROM projection_checkpoints WHERE name = 'logger'")
    return int(rows[0][0]) if rows else 0


def test_sessions_killed_mid_batch_are_waited_out_and_nothing_is_dead_lettered(
        bus: RedisStreamBus, engine: Engine, events: EventFactory, projector_engine) -> None:
    bus.publish([events.created(1)])
    with running(applier(bus, projector_engine())) as consumer:
        wait_for(lambda: checkpoint(engine) == 1)
        with task_row_locked(engine, 1):
            bus.publish([events.status(1, "active", "completed")])
            killed: set[int] = set()
            for _ in range(4):  # twice the deliveries after which a poison event is given up
                pid = wait_for(lambda: blocked_applier(engine, frozenset(killed)),
                               what="the projector to retry (not to dead-letter the event)")
                terminate(engine, pid)
                killed.add(pid)
            wait_for(lambda: consumer.transient_failures >= 4, what="four outages waited out")
        wait_for(lambda: checkpoint(engine) == 2)
    assert bus.dead_letter_count() == 0
    assert table(engine, "SELECT status FROM task_state") == [("completed",)]
    assert table(engine, "SELECT new_status FROM audit_log") == [("completed",)]


def test_lock_timeouts_are_retried_and_nothing_is_dead_lettered(
        bus: RedisStreamBus, engine: Engine, events: EventFactory, projector_engine) -> None:
    bus.publish([events.created(1)])
    with running(applier(bus, projector_engine(lock_timeout="50ms"))) as consumer:
        wait_for(lambda: checkpoint(engine) == 1)
        with task_row_locked(engine, 1):
            bus.publish([events.status(1, "active", "completed")])
            wait_for(lambda: consumer.transient_failures >= 4,  # SQLSTATE 55P03 each time
                     what="four lock timeouts retried (not the event dead-lettered)")
        wait_for(lambda: checkpoint(engine) == 2)
    assert bus.dead_letter_count() == 0
    assert table(engine, "SELECT new_status FROM audit_log") == [("completed",)]


class WatchedProjection:
    """A projection that records every batch it opens, to see who applies."""

    def __init__(self, projection: LoggerProjection) -> None:
        self.projection = projection
        self.batches = 0

    def batch(self) -> AbstractContextManager[LoggerBatch]:
        """Count, then open the real batch."""
        self.batches += 1
        return self.projection.batch()


def advisory_lock_holder(engine: Engine, lock: PostgresAdvisoryLock) -> int | None:
    """The pid of the session holding the applier lock (in this test's database)."""
    with engine.connect() as connection:
        return connection.execute(text(
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE d.datname = current_database() AND l.locktype = 'advisory' AND l.granted "
            "AND l.classid::bigint = 0 AND l.objid::bigint = :key AND l.objsubid = 1"),
            {"key": lock.key}).scalar()


def test_an_applier_whose_lock_session_dies_stands_by_and_a_standby_takes_over(
        bus: RedisStreamBus, engine: Engine, logger_url: str, events: EventFactory,
        projector_engine) -> None:
    def member(name: str) -> tuple[StreamConsumer, WatchedProjection, PostgresAdvisoryLock]:
        made = applier(bus, projector_engine(), name)
        watched = WatchedProjection(made.projection)  # type: ignore[arg-type]
        made.projection = watched
        made.lock = PostgresAdvisoryLock(logger_url, "logger:logger")
        return made, watched, made.lock

    first, first_batches, first_lock = member("first")
    second, _, second_lock = member("second")
    try:
        assert first.ensure_active() and not second.ensure_active()
        terminate(engine, wait_for(lambda: advisory_lock_holder(engine, first_lock)))
        wait_for(lambda: advisory_lock_holder(engine, first_lock) is None)
        assert second.ensure_active(), "the standby did not take the freed lock"
        assert not first.ensure_active(), "the first applier did not notice its lock was gone"
        with running(first), running(second):
            bus.publish([events.created(n) for n in range(1, 21)])
            wait_for(lambda: checkpoint(engine) == 20)
            assert second.active and not first.active
        assert first_batches.batches == 0, "an applier without the lock opened a batch"
    finally:
        first_lock.release()
        second_lock.release()
