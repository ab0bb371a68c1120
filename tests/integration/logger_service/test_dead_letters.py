"""`taskstream dead-letters list|retry|drop` on real PostgreSQL and Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from click.testing import CliRunner

from services.entrypoints.cli import main
from services.logger_service.adapters.cache import VersionPublisher
from services.logger_service.adapters.dead_letters import DeadLetterStream
from services.logger_service.adapters.projection_store import sql_transaction, versions_after
from services.logger_service.service_layer import dead_letters
from services.logger_service.service_layer.projection import LoggerBatch, LoggerProjection
from shared.stream.consumer import StreamConsumer
from shared.stream.entries import seq_of
from shared.stream.options import ConsumerOptions
from tests.integration.logger_service.conftest import drain, table
from tests.unit.logger_service.factories import EventFactory


class FlakyProjection(LoggerProjection):
    """The projection with a bug on chosen seqs, fixed before the retry."""

    failing: set[int] = set()

    @contextmanager
    def batch(self) -> Iterator[LoggerBatch]:
        with super().batch() as batch:
            apply = batch.apply_encoded

            def flaky(payload: str, entry_id: str = "") -> None:
                seq = seq_of(entry_id)
                if seq in self.failing:
                    raise RuntimeError(f"cannot apply {seq} yet")
                apply(payload, entry_id)

            batch.apply_encoded = flaky  # type: ignore[method-assign]
            yield batch


@pytest.fixture
def cli_env(monkeypatch, logger_url, redis_url, namespace):
    monkeypatch.setenv("LOGGER_DATABASE_URL", logger_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("REDIS_NAMESPACE", namespace)


@pytest.fixture
def dead_lettered(engine, bus):
    """Events 2 (status of task 1) and 4 (TaskCreated of task 3) dead-lettered."""
    factory = EventFactory()
    bus.publish([factory.created(1), factory.status(1, "active", "in_progress"),
                 factory.created(2), factory.created(3), factory.created(4)])
    FlakyProjection.failing = {2, 4}
    bus.ensure_group("logger")
    consumer = StreamConsumer(
        bus, FlakyProjection(sql_transaction(engine)),
        ConsumerOptions(group="logger", consumer="p1", block_ms=0, retry_delay_seconds=0,
                        max_deliveries=2))
    drain(consumer)
    FlakyProjection.failing = set()
    assert bus.dead_letter_count() == 2
    return factory


def letters(bus) -> list[dict]:
    found = CliRunner().invoke(main, ["dead-letters", "list", "--json"])
    assert found.exit_code == 0, found.output
    return [json.loads(line) for line in found.output.splitlines() if line.startswith("{")]


def test_list_shows_entry_seq_type_error_and_deliveries(cli_env, bus, dead_lettered, engine):
    found = letters(bus)
    assert [(d["seq"], d["type"], d["deliveries"]) for d in found] == [
        (2, "TaskStatusChanged", 2), (4, "TaskCreated", 2)]
    assert "cannot apply 2 yet" in found[0]["error"]
    assert table(engine, "SELECT seq FROM projection_skipped ORDER BY seq") == [(2,), (4,)]
    text = CliRunner().invoke(main, ["dead-letters", "list"]).output
    assert f"{found[0]['entry']}  seq 2  TaskStatusChanged  deliveries 2" in text


def test_retry_applies_once_and_removes_the_entry(cli_env, bus, dead_lettered, engine):
    entry = letters(bus)[0]["entry"]
    result = CliRunner().invoke(main, ["dead-letters", "retry", entry])
    assert result.exit_code == 0, result.output
    assert "event 2 (TaskStatusChanged) applied" in result.output
    assert table(engine, "SELECT status FROM task_state WHERE task_id = 1") == [("in_progress",)]
    assert table(engine, "SELECT new_status FROM audit_log") == [("in_progress",)]
    assert [d["seq"] for d in letters(bus)] == [4]
    again = CliRunner().invoke(main, ["dead-letters", "retry", entry])
    assert again.exit_code != 0 and f"no dead letter {entry}" in again.output


def test_a_retry_that_died_before_removing_the_entry_does_not_apply_twice(
        bus, dead_lettered, engine, cache):
    stream = DeadLetterStream(bus.client, bus.stream)
    entry = stream.list()[0].entry_id  # event 2: task 1 active -> in_progress
    versions = VersionPublisher(cache, lambda after: versions_after(engine, after))

    class DiesBeforeRemove(DeadLetterStream):
        def remove(self, entry_id):
            raise SystemExit("killed after commit")

    with pytest.raises(SystemExit):
        dead_letters.retry(DiesBeforeRemove(bus.client, bus.stream), sql_transaction(engine),
                           versions, entry)
    with engine.begin() as connection:  # if it were applied again, this would show
        connection.exec_driver_sql("UPDATE task_state SET status = 'completed' WHERE task_id = 1")
    done = dead_letters.retry(stream, sql_transaction(engine), versions, entry)
    assert (done.applied, done.message) == (False, "event 2 is already applied; entry removed")
    assert table(engine, "SELECT status FROM task_state WHERE task_id = 1") == [("completed",)]
    assert [d.seq for d in stream.list()] == [4]


def test_retry_refuses_an_event_the_task_has_moved_past_unless_forced(
        cli_env, bus, dead_lettered, engine, make_consumer):
    bus.publish([dead_lettered.status(1, "active", "completed")])  # version 3 of task 1
    drain(make_consumer("p2"))
    entry = letters(bus)[0]["entry"]
    refused = CliRunner().invoke(main, ["dead-letters", "retry", entry])
    assert refused.exit_code != 0
    assert "task 1 is at version 3, after this event's 2" in refused.output
    assert table(engine, "SELECT seq FROM projection_skipped ORDER BY seq") == [(2,), (4,)]
    forced = CliRunner().invoke(main, ["dead-letters", "retry", entry, "--force"])
    assert forced.exit_code == 0, forced.output
    assert table(engine, "SELECT seq FROM projection_skipped") == [(4,)]


def test_drop_removes_the_entry_without_applying_it(cli_env, bus, dead_lettered, engine):
    entry = letters(bus)[1]["entry"]
    result = CliRunner().invoke(main, ["dead-letters", "drop", entry])
    assert result.exit_code == 0 and f"dropped {entry}" in result.output
    assert [d["seq"] for d in letters(bus)] == [2]
    assert table(engine, "SELECT task_id FROM task_state ORDER BY task_id") == [(1,), (2,), (4,)]
    missing = CliRunner().invoke(main, ["dead-letters", "drop", entry])
    assert missing.exit_code != 0
