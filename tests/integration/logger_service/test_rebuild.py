"""`taskstream projections rebuild|verify` on real PostgreSQL and Redis."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from services.entrypoints.cli import main
from services.logger_service.adapters.projection_store import sql_transaction
from services.logger_service.service_layer.projection import LoggerProjection
from shared.db import PostgresAdvisoryLock
from shared.events import EventEnvelope
from shared.stream.consumer import StreamConsumer
from shared.stream.options import ConsumerOptions
from testbed.polling import wait_for
from tests.integration.logger_service.conftest import drain, store, table
from tests.integration.logger_service.test_projections import snapshot
from tests.unit.logger_service.factories import DAY, EventFactory

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def cli_env(monkeypatch, logger_url, tasks_engine, redis_url, namespace):
    """Environment of `taskstream` commands on the test's databases and namespace."""
    env = {"LOGGER_DATABASE_URL": logger_url, "REDIS_URL": redis_url,
           "TASKS_DATABASE_URL": tasks_engine.url.render_as_string(hide_password=False),
           "REDIS_NAMESPACE": namespace}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args))


class Traffic:
    """Writes a seeded mix of events to the store and the stream (task service + relay)."""

    def __init__(self, tasks_engine, bus, seed: int = 7) -> None:
        self.tasks_engine = tasks_engine
        self.bus = bus
        self.factory = EventFactory()
        self.random = random.Random(seed)
        self.status: dict[int, str] = {}
        self.next_task = 1
        self.day = DAY

    def one(self) -> EventEnvelope:
        """One plausible next event."""
        live = [t for t, s in self.status.items() if s != "purged"]
        roll = self.random.random()
        if not live or roll < 0.35:
            task, self.next_task = self.next_task, self.next_task + 1
            self.status[task] = "active"
            return self.factory.created(task)
        task = self.random.choice(live)
        if roll < 0.55:
            return self.factory.updated(task, title=f"T{self.random.randint(0, 999)}")
        if roll < 0.75:
            new = self.random.choice(["active", "in_progress", "completed"])
            previous, self.status[task] = self.status[task], new
            return self.factory.status(task, previous, new)
        if roll < 0.82:
            self.status[task] = "purged"
            return self.factory.purged(task)
        if roll < 0.97:
            return self.factory.soft_deleted(task)
        self.day = self.day.fromordinal(self.day.toordinal() + 1)
        return self.factory.transfer(self.day)

    def send(self, count: int) -> None:
        """Store then publish `count` events."""
        events = [self.one() for _ in range(count)]
        store(self.tasks_engine, events)
        self.bus.publish(events)


def live_projector(engine, bus) -> StreamConsumer:
    """A projector consumer for a background thread."""
    bus.ensure_group("logger")
    options = ConsumerOptions(group="logger", consumer="live", batch_size=50, block_ms=20,
                              retry_delay_seconds=0.01)
    return StreamConsumer(bus, LoggerProjection(sql_transaction(engine)), options)


def checkpoint(engine) -> int:
    rows = table(engine, "SELECT last_seq FROM projection_checkpoints WHERE name = 'logger'")
    return int(rows[0][0]) if rows else 0


def test_a_rebuild_during_live_traffic_ends_equal_to_live(
        cli_env, engine, bus, tasks_engine):
    traffic = Traffic(tasks_engine, bus)
    traffic.send(400)
    stop, done = threading.Event(), threading.Event()
    consumer = live_projector(engine, bus)
    projector = threading.Thread(target=consumer.run, args=(stop,))
    projector.start()

    def write() -> None:
        while not done.is_set():  # about 150 events/s
            traffic.send(3)
            time.sleep(0.02)

    writer = threading.Thread(target=write)
    try:
        wait_for(lambda: checkpoint(engine) >= 400, 20)
        ids_before = dict(table(engine, "SELECT (task_id, date)::text, id FROM task_logger"))
        writer.start()
        result = run_cli("projections", "rebuild", "--batch-size", "40")
        assert result.exit_code == 0, result.output
        assert "swapped in at checkpoint" in result.output
        assert "events/s" in result.output and "ETA" in result.output  # the progress line
        time.sleep(0.2)  # traffic goes on after the swap
        done.set()
        writer.join()
        head = traffic.factory.seq.__next__() - 1
        wait_for(lambda: checkpoint(engine) == head, 20)
    finally:
        done.set()
        stop.set()
        projector.join()
    assert table(engine, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'logger_%'") \
        == [(0,)]
    ids_after = dict(table(engine, "SELECT (task_id, date)::text, id FROM task_logger"))
    kept = set(ids_before) & set(ids_after)  # traffic purged some tasks since
    assert len(kept) > 20
    assert {k: ids_after[k] for k in kept} == {k: ids_before[k] for k in kept}  # ids survive
    verified = run_cli("projections", "verify")
    assert verified.exit_code == 0, verified.output
    assert "projections equal a rebuild" in verified.output
    assert len(table(engine, "SELECT 1 FROM task_state")) > 50


def test_verify_names_tampered_and_missing_rows(cli_env, engine, bus, tasks_engine,
                                                make_consumer):
    factory = EventFactory()
    events = [factory.created(1), factory.created(2), factory.created(3), factory.transfer(),
              factory.status(2, "active", "in_progress")]
    store(tasks_engine, events)
    bus.publish(events)
    consumer = make_consumer()
    while consumer.step():
        pass
    assert run_cli("projections", "verify").exit_code == 0
    with engine.begin() as connection:
        connection.execute(text("UPDATE task_logger SET title = 'forged' WHERE task_id = 2"))
        connection.execute(text("DELETE FROM audit_log"))
    result = run_cli("projections", "verify")
    assert result.exit_code == 1, result.output
    assert f"task_logger (task_id=2, date={DAY.isoformat()}): values differ" in result.output
    assert "audit_log: 0 live rows, 1 rebuilt rows, 1 rows differ" in result.output
    assert "missing in live" in result.output
    assert "task_state: 3 live rows, 3 rebuilt rows, equal" in result.output


def test_rebuild_and_verify_replay_in_the_transfer_time_zone(
        cli_env, engine, bus, tasks_engine, make_consumer, monkeypatch):
    factory = EventFactory()
    evening = dt.datetime(2025, 4, 6, 2, 30, tzinfo=dt.UTC)  # April 5th in Los Angeles
    events = [factory.created(1), factory.created(2), factory.transfer(),
              factory.transfer(DAY + dt.timedelta(days=1)),
              factory.status(1, "active", "completed", at=evening), factory.soft_deleted(2)]
    store(tasks_engine, events)
    bus.publish(events)
    drain(make_consumer(timezone="America/Los_Angeles"))
    before = snapshot(engine)
    assert [row[:3] for row in before["logger"]] == [(1, "Task 1", "completed"),
                                                     (1, "Task 1", "active")]
    monkeypatch.setenv("TRANSFER_TIMEZONE", "America/Los_Angeles")
    verified = run_cli("projections", "verify")
    assert verified.exit_code == 0, verified.output
    rebuilt = run_cli("projections", "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert snapshot(engine) == before
    monkeypatch.setenv("TRANSFER_TIMEZONE", "UTC")
    differs = run_cli("projections", "verify")
    assert differs.exit_code == 1
    assert f"task_logger (task_id=1, date={DAY.isoformat()}): values differ" in differs.output


def test_a_second_rebuild_is_refused(cli_env, logger_url, tasks_engine):
    holder = PostgresAdvisoryLock(logger_url, "logger:rebuild")  # what a running rebuild holds
    assert holder.acquire()
    try:
        result = run_cli("projections", "rebuild")
        assert result.exit_code != 0
        assert "another rebuild of this projection is running" in result.output
    finally:
        holder.release()
    assert run_cli("projections", "rebuild").exit_code == 0


def test_a_killed_rebuild_resumes_where_it_stopped(cli_env, engine, tasks_engine):
    with tasks_engine.begin() as connection:  # 6,000 TaskCreated events, stored in SQL
        connection.execute(text("""
            INSERT INTO events (seq, event_id, task_id, version, type, data, metadata,
                                occurred_at)
            SELECT n, gen_random_uuid(), n, 1, 'TaskCreated',
                   jsonb_build_object('title', 'Task ' || n, 'status', 'active',
                                      'priority', 'medium'),
                   '{"schema_version": 1}', now()
            FROM generate_series(1, 6000) n"""))
    env = dict(os.environ, TASKSTREAM_ENV="test", **cli_env)
    command = [str(Path(sys.executable).parent / "taskstream"), "projections", "rebuild",
               "--batch-size", "10"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _shadow_checkpoint(engine) >= 300, 20)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    reached = _shadow_checkpoint(engine)
    assert 300 <= reached < 6000
    assert checkpoint(engine) == 0  # nothing swapped
    result = run_cli("projections", "rebuild", "--batch-size", "2000")
    assert result.exit_code == 0, result.output
    resumed = int(result.output.split("resumed from ")[1].split(";")[0])
    assert resumed >= reached
    assert table(engine, "SELECT count(*), min(task_id), max(task_id) FROM task_state") == [
        (6000, 1, 6000)]
    assert checkpoint(engine) == 6000


def _shadow_checkpoint(engine) -> int:
    with engine.connect() as connection:
        exists = connection.execute(text(
            "SELECT to_regclass('logger_rebuild.projection_checkpoints')")).scalar()
        if not exists:
            return 0
        found = connection.execute(text(
            "SELECT last_seq FROM logger_rebuild.projection_checkpoints")).scalar()
    return int(found or 0)


def test_a_rebuild_fixes_a_damaged_projection_and_snapshots_match(
        cli_env, engine, bus, tasks_engine, make_consumer):
    traffic = Traffic(tasks_engine, bus, seed=3)
    traffic.send(120)
    consumer = make_consumer()
    while consumer.step():
        pass
    before = snapshot(engine)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM task_state WHERE task_id % 2 = 0"))
    assert run_cli("projections", "verify").exit_code == 1
    result = run_cli("projections", "rebuild")
    assert result.exit_code == 0, result.output
    assert snapshot(engine) == before
    assert run_cli("projections", "verify").exit_code == 0


def test_an_event_that_cannot_be_applied_is_skipped_and_the_rest_rebuilt(
        cli_env, engine, tasks_engine):
    events = EventFactory()
    stored = [events.created(n) for n in range(1, 6)]
    stored[2] = dataclasses.replace(stored[2], data={**stored[2].data, "due_date": "someday"})
    store(tasks_engine, stored)
    result = run_cli("projections", "rebuild")
    assert result.exit_code == 0, result.output
    assert "1 skipped" in result.output
    assert table(engine, "SELECT task_id FROM task_state ORDER BY task_id") == [
        (1,), (2,), (4,), (5,)]
    assert checkpoint(engine) == 5
    (error,) = table(engine, "SELECT error FROM projection_skipped WHERE seq = 3")[0]
    assert "someday" in error
