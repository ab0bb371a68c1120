"""Operator commands on a partitioned log: verify and rebuild bring every partition to one
point of the log, and `projections repartition` changes the count from the event store."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from services.entrypoints.cli import main
from services.logger_service.adapters.cache import DatePageCache
from services.logger_service.adapters.projection_store import versions_after
from services.logger_service.entrypoints.projector import applier_lock, build_consumers
from services.logger_service.service_layer.projection import PROJECTION_NAME
from services.task_service.adapters.relay_status import read_status
from shared.stream.partitions import Partitioning
from shared.stream.redis_bus import RedisStreamBus
from testbed.polling import wait_for
from tests.integration.logger_service.conftest import drain, sql_consumer, store, table
from tests.integration.logger_service.partitioned import (
    PARTITIONS,
    expected_lengths,
    history,
    logger_settings,
    published,
    snapshot,
)


@pytest.fixture
def cli_env(monkeypatch, logger_url, redis_url, namespace, tasks_engine):
    """The environment of `taskstream` operator commands on the test's databases."""
    def set_partitions(count: int) -> None:
        values = {"LOGGER_DATABASE_URL": logger_url, "REDIS_URL": redis_url,
                  "REDIS_NAMESPACE": namespace, "STREAM_PARTITIONS": str(count),
                  "TASKS_DATABASE_URL": tasks_engine.url.render_as_string(hide_password=False)}
        for name, value in values.items():
            monkeypatch.setenv(name, value)
    return set_partitions


def checkpoints(engine, partitioning: Partitioning) -> list[int]:
    found = dict(table(engine, "SELECT name, last_seq FROM projection_checkpoints"))
    return [int(found.get(partitioning.checkpoint_name(PROJECTION_NAME, p), 0))
            for p in range(partitioning.count)]


def consumers_of(engine, logger_url, redis_url, redis_client, namespace,
                 partitioning: Partitioning = PARTITIONS):
    made = build_consumers(logger_settings(logger_url, redis_url, namespace, partitioning),
                           engine, redis_client)
    for consumer in made:
        consumer.bus.ensure_group(consumer.options.group)
    return made


def test_verify_and_rebuild_bring_every_partition_to_one_point(
        tasks_engine, engine, logger_url, redis_url, redis_client, namespace, streams,
        run_relay, events, reference, cli_env):
    made = history(events)
    store(tasks_engine, made)
    run_relay()
    lengths = expected_lengths(made)
    wait_for(lambda: [published(redis_client, s) for s in streams] == lengths)
    consumers = consumers_of(engine, logger_url, redis_url, redis_client, namespace)
    for consumer in (consumers[0], consumers[1], consumers[3]):
        drain(consumer, 500)
    consumers[2].handle(consumers[2].bus.range(1, 5, 5))  # partition 2 behind
    cli_env(4)
    before = versions_after(engine, 0)
    verified = CliRunner().invoke(main, ["projections", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "projections equal a rebuild" in verified.output
    assert checkpoints(engine, PARTITIONS) == lengths, "partition 2 was brought to the head"
    # The days partition 2's late events changed have new versions, in Redis too: no cached
    # page of them is served as current.
    cache = DatePageCache(redis_client, namespace)
    changed = {day: v for day, v in versions_after(engine, 0).items() if v > before.get(day, 0)}
    assert changed, "the live tables changed without a new version of their days"
    assert {day: int(redis_client.get(cache.version_key(day)) or 0) for day in changed} == changed
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE task_state SET title = 'wrong' WHERE task_id = 1")
    assert CliRunner().invoke(main, ["projections", "verify"]).exit_code == 1
    rebuilt = CliRunner().invoke(main, ["projections", "rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert checkpoints(engine, PARTITIONS) == lengths
    for consumer in consumers:  # what they still hold is covered by the checkpoints
        drain(consumer, 500)
    assert snapshot(engine) == reference()


def test_repartition_from_4_to_2_and_from_1_to_4_from_the_event_store(
        tasks_engine, engine, logger_url, redis_url, redis_client, namespace, streams,
        run_relay, events, reference, cli_env):
    made = history(events)
    store(tasks_engine, made)
    first = run_relay()
    wait_for(lambda: [published(redis_client, s) for s in streams] == expected_lengths(made))
    first.stop()  # the command runs with the relay stopped
    wait_for(lambda: "stopped_at" in read_status(redis_client, namespace))
    four = consumers_of(engine, logger_url, redis_url, redis_client, namespace)
    drain(four[0], 500)
    four[1].handle(four[1].bus.range(1, 9, 9))
    cli_env(4)
    held = applier_lock(logger_settings(logger_url, redis_url, namespace), PARTITIONS, 3)
    assert held.acquire()
    refused = CliRunner().invoke(main, ["projections", "repartition", "--partitions", "2"])
    assert refused.exit_code == 1 and "stop the relay and every projector" in refused.output
    held.release()
    done = CliRunner().invoke(main, ["projections", "repartition", "--partitions", "2"])
    assert done.exit_code == 0, done.output
    two = Partitioning(2)
    assert checkpoints(engine, two) == expected_lengths(made, two)
    assert not any(redis_client.exists(s) for s in streams), "old partitions deleted"
    relay = run_relay(partitioning=two)
    for consumer in consumers_of(engine, logger_url, redis_url, redis_client, namespace, two):
        wait_for(lambda c=consumer: published(redis_client, c.bus.stream) > 0)
        drain(consumer, 500)
    assert snapshot(engine) == reference()

    more = [events.updated(n, title=f"later {n}") for n in range(1, 20)]
    store(tasks_engine, more)
    whole = RedisStreamBus(redis_client, f"{namespace}:events")
    wait_for(lambda: published(redis_client, whole.stream) == len(made) + len(more))
    relay.stop()  # as the command asks
    wait_for(lambda: "stopped_at" in read_status(redis_client, namespace))
    cli_env(2)
    assert CliRunner().invoke(main, ["projections", "repartition", "--partitions",
                                     "1"]).exit_code == 0
    assert table(engine, "SELECT last_seq FROM projection_checkpoints WHERE name = 'logger'"
                 ) == [(len(made) + len(more),)]
    drain(sql_consumer(engine, whole), 500)  # the whole log's stream, skipped by checkpoint
    cli_env(1)
    assert CliRunner().invoke(main, ["projections", "repartition", "--partitions",
                                     "4"]).exit_code == 0
    assert checkpoints(engine, PARTITIONS) == expected_lengths(made + more)
    assert redis_client.xinfo_groups(whole.stream) == [], "the whole log's group is retired"
    assert snapshot(engine) == reference()


def test_events_republish_and_tail_work_per_partition(
        tasks_engine, redis_client, streams, events, cli_env):
    made = history(events)
    store(tasks_engine, made)
    lengths = expected_lengths(made)
    cli_env(4)
    first = CliRunner().invoke(main, ["events", "republish", "--partition", "2"])
    assert first.exit_code == 0, first.output
    assert [published(redis_client, s) for s in streams] == lengths
    before = redis_client.xrange(streams[2])
    redis_client.xtrim(streams[2], maxlen=3)  # lost entries below the head
    rebuilt = CliRunner().invoke(main, ["events", "republish", "--partition", "2",
                                        "--rebuild-stream"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert redis_client.xrange(streams[2]) == before
    tailed = CliRunner().invoke(main, ["events", "tail", "--partition", "1", "--from-seq",
                                       "1", "--max-events", "3"])
    assert tailed.exit_code == 0, tailed.output
    ones = [e.seq for e in made if PARTITIONS.owns(1, e.task_id)][:3]
    assert [int(line.split()[0]) for line in tailed.output.splitlines()] == ones
    wrong = CliRunner().invoke(main, ["events", "tail", "--partition", "4"])
    assert wrong.exit_code == 2
