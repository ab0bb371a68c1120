"""A partitioned log (`STREAM_PARTITIONS` = 4): the relay routes each task's events to one
partition, numbered 1..n there without a gap and in the task's order, and every transfer to
all partitions; the projector applies each partition under its own checkpoint, and the
tables it builds equal those built from the one whole stream, whatever is killed."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.entrypoints.cli import main
from services.logger_service.adapters.metrics import LAG_EVENTS
from services.logger_service.adapters.partition_positions import PartitionedPosition
from services.logger_service.entrypoints.projector import build_consumers
from services.logger_service.service_layer.projection import PROJECTION_NAME
from shared.events import decode, encode
from shared.stream.redis_bus import RedisStreamBus
from testbed.polling import wait_for
from tests.integration.logger_service.conftest import drain, store, table
from tests.integration.logger_service.partitioned import (
    PARTITIONS,
    expected_lengths,
    history,
    logger_settings,
    partition_events,
    published,
    snapshot,
)
from tests.unit.logger_service.factories import DAY


def test_each_partition_holds_its_tasks_events_numbered_1_to_n_in_task_order(
        tasks_engine, redis_client, namespace, streams, run_relay, events):
    made = history(events)
    store(tasks_engine, made)
    run_relay()
    lengths = expected_lengths(made)
    wait_for(lambda: [published(redis_client, s) for s in streams] == lengths)
    transfers = [e.seq for e in made if e.task_id is None]
    for partition, stream in enumerate(streams):
        entries = partition_events(redis_client, stream)
        assert [pseq for pseq, _ in entries] == list(range(1, lengths[partition] + 1))
        seqs = [event.seq for _, event in entries]
        assert seqs == sorted(seqs), "a partition follows the global order"
        assert all(PARTITIONS.owns(partition, e.task_id) for _, e in entries)
        assert [e.seq for _, e in entries if e.task_id is None] == transfers
        versions: dict[int, int] = {}
        for _, event in entries:
            if event.task_id is not None:
                assert event.version == versions.get(event.task_id, 0) + 1
                versions[event.task_id] = event.version
    whole = [event.seq for _, event in partition_events(redis_client, f"{namespace}:events")]
    assert whole == list(range(1, len(made) + 1)), "the whole log's stream is kept beside"


def test_a_lost_partition_is_republished_and_a_gap_is_put_back_from_the_store(
        tasks_engine, redis_client, streams, run_relay, events):
    made = history(events)
    store(tasks_engine, made)
    run_relay()
    lengths = expected_lengths(made)
    wait_for(lambda: [published(redis_client, s) for s in streams] == lengths)
    before = partition_events(redis_client, streams[2])
    redis_client.delete(streams[2])
    redis_client.xadd(streams[2], {"event": encode(before[-1][1])}, id="999-0")  # no prefix
    wait_for(lambda: partition_events(redis_client, streams[2]) == before)
    bus = RedisStreamBus(redis_client, streams[1])
    bus.backfill(3, 9, 100)  # what a consumer meeting a gap asks for
    wait_for(lambda: len(bus.backfill(3, 9, 100)) == 7)
    put_back = [(d.seq, decode(d.payload).seq) for d in bus.backfill(3, 9, 100)]
    assert put_back == [(pseq, e.seq) for pseq, e in partition_events(redis_client, streams[1])
                        if 3 <= pseq <= 9]
    redis_client.xtrim(streams[3], maxlen=0)  # no entry left to say where the partition is
    more = [events.updated(n, title="later") for n in (3, 7, 4)]
    store(tasks_engine, more)
    expected = [(lengths[3] + 1, more[0].seq), (lengths[3] + 2, more[1].seq)]

    def placed() -> list[tuple[int, int]] | None:
        found = [(pseq, e.seq) for pseq, e in partition_events(redis_client, streams[3])]
        return found if found[-2:] == expected else None

    found = wait_for(placed, what="the new events at the partition's next positions")
    if redis_client.xinfo_stream(streams[3]).get("entries-added") is not None:
        assert found == expected  # Redis 7 counts what a stream took: trimmed, not lost
    else:  # Redis 6 cannot tell an emptied stream from a lost one: republished whole
        assert [pseq for pseq, _ in found] == list(range(1, lengths[3] + 3))


def test_partitioned_projection_equals_the_whole_one_and_logs_each_transfer_once(
        tasks_engine, engine, logger_url, redis_url, redis_client, namespace, streams,
        run_relay, events, reference, caplog):
    made = history(events)
    store(tasks_engine, made)
    run_relay()
    wait_for(lambda: [published(redis_client, s) for s in streams] == expected_lengths(made))
    settings = logger_settings(logger_url, redis_url, namespace)
    consumers = build_consumers(settings, engine, redis_client)
    for consumer in consumers:
        consumer.bus.ensure_group(consumer.options.group)
    assert len(consumers) == 4
    position = PartitionedPosition(engine, redis_client, PARTITIONS, streams, PROJECTION_NAME)
    with caplog.at_level(logging.INFO, logger="taskstream.projector"):
        for consumer in consumers[:3]:
            drain(consumer, 500)
        assert position() < len(made), "partition 3 holds back the whole log's position"
        drain(consumers[3], 500)
        partitioned = transfer_lines(caplog)
        caplog.clear()
        whole = reference()
        unpartitioned = transfer_lines(caplog)
    assert position() == len(made)
    assert snapshot(engine) == whole
    assert len(unpartitioned) == 2
    assert partitioned == unpartitioned, "each transfer is logged once, with the total"


def transfer_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records
            if record.getMessage().startswith("Transferred")]


def test_an_idle_partition_does_not_hold_back_the_position(
        tasks_engine, engine, logger_url, redis_url, redis_client, namespace, streams,
        run_relay, events):
    made = [events.created(1), events.created(2)] + [events.updated(1, title=f"t{n}")
                                                      for n in range(30)]
    store(tasks_engine, made)
    run_relay()
    wait_for(lambda: published(redis_client, streams[1]) == 31)
    settings = logger_settings(logger_url, redis_url, namespace)
    consumers = build_consumers(settings, engine, redis_client)
    for consumer in consumers:
        consumer.bus.ensure_group(consumer.options.group)
    for consumer in consumers:
        drain(consumer, 100)
    position = PartitionedPosition(engine, redis_client, PARTITIONS, streams, PROJECTION_NAME)
    wait_for(lambda: position() == len(made))


def test_relay_and_projector_processes_killed_mid_batch_lose_and_repeat_nothing(
        tasks_engine, engine, logger_url, redis_url, redis_client, namespace, streams,
        events, reference, tmp_path: Path):
    made = history(events, 3000)
    for round_ in range(4):
        made += [events.updated(n, title=f"round {round_}") for n in range(1, 2999, 2)]
        made.append(events.transfer(DAY.replace(day=10 + round_)))
    store(tasks_engine, made)
    env = {**os.environ, "TASKSTREAM_ENV": "test", "TASKS_DATABASE_URL": str(tasks_engine.url
           .render_as_string(hide_password=False)), "LOGGER_DATABASE_URL": logger_url,
           "REDIS_URL": redis_url, "REDIS_NAMESPACE": namespace, "STREAM_PARTITIONS": "4",
           "RELAY_BATCH_SIZE": "200", "PROJECTOR_BATCH_SIZE": "100", "PROJECTOR_BLOCK_MS": "100",
           "PROJECTOR_LOCK_POLL_SECONDS": "0.2", "PROJECTOR_METRICS_PORT": "0",
           "RELAY_METRICS_PORT": "0", "LOG_FORMAT": "text"}
    taskstream = str(Path(sys.executable).with_name("taskstream"))
    lengths = expected_lengths(made)

    def start(command: str) -> subprocess.Popen:
        log = (tmp_path / f"{command}.log").open("a")
        return subprocess.Popen([taskstream, command], env=env, stdout=log,
                                stderr=subprocess.STDOUT)

    def applied() -> list[int]:
        found = dict(table(engine, "SELECT name, last_seq FROM projection_checkpoints"))
        return [int(found.get(PARTITIONS.checkpoint_name(PROJECTION_NAME, p), 0))
                for p in range(4)]

    relay = start("relay")
    wait_for(lambda: sum(published(redis_client, s) for s in streams) > 2000, 60)
    relay.send_signal(signal.SIGKILL)
    relay.wait(10)
    assert sum(published(redis_client, s) for s in streams) < sum(lengths)
    projector = start("projector")
    wait_for(lambda: sum(applied()) > 1000, 60)
    projector.send_signal(signal.SIGKILL)
    projector.wait(10)
    assert sum(applied()) < sum(lengths), "the projector finished before it was killed"
    relay, projector = start("relay"), start("projector")
    try:
        wait_for(lambda: applied() == lengths, 120)
    finally:
        for process in (relay, projector):
            process.send_signal(signal.SIGTERM)
            process.wait(15)
    for partition, stream in enumerate(streams):
        ids = [pseq for pseq, _ in partition_events(redis_client, stream)]
        assert ids == list(range(1, lengths[partition] + 1))
    assert snapshot(engine) == reference()


def test_status_is_per_partition_and_in_total(
        tasks_engine, engine, logger_url, redis_url, redis_client, namespace, streams,
        run_relay, events, monkeypatch):
    store(tasks_engine, [events.created(n) for n in range(1, 9)] + [events.transfer()])
    run_relay()
    wait_for(lambda: [published(redis_client, s) for s in streams] == [3, 3, 3, 3])
    consumers = build_consumers(logger_settings(logger_url, redis_url, namespace), engine,
                                redis_client)
    consumers[1].bus.ensure_group(consumers[1].options.group)
    drain(consumers[1], 100)
    for name, value in {"LOGGER_DATABASE_URL": logger_url, "REDIS_URL": redis_url,
                        "REDIS_NAMESPACE": namespace, "STREAM_PARTITIONS": "4"}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["projections", "status", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output.strip().splitlines()[-1])
    assert [(p["name"], p["checkpoint"], p["stream_head"]) for p in found["partitions"]] == [
        ("logger:0/4", 0, 3), ("logger:1/4", 3, 3), ("logger:2/4", 0, 3), ("logger:3/4", 0, 3)]
    assert found["lag_events"] == 9
    one = CliRunner().invoke(main, ["projections", "status", "--partition", "2"]).output
    assert "projection:   logger:2/4" in one and "logger:1/4" not in one
    text = CliRunner().invoke(main, ["projections", "status"]).output
    assert text.count("projection:") == 4 and "total:        lag 9 events" in text
    consumers[0].observer.tick()  # the projector's gauges: the whole log's lag
    assert LAG_EVENTS._value.get() == 9  # type: ignore[attr-defined]


def test_dead_letters_are_listed_retried_and_dropped_per_partition(
        tasks_engine, engine, logger_url, redis_url, redis_client, namespace, streams,
        run_relay, events, monkeypatch):
    store(tasks_engine, [events.created(n) for n in range(1, 9)] + [events.transfer()])
    run_relay()
    wait_for(lambda: [published(redis_client, s) for s in streams] == [3, 3, 3, 3])
    consumers = build_consumers(logger_settings(logger_url, redis_url, namespace), engine,
                                redis_client)
    one = consumers[1]
    one.bus.ensure_group(one.options.group)
    one.handle(one.bus.range(1, 1, 1))
    assert one.dead_letter(one.bus.range(2, 2, 1)[0], RuntimeError("boom"))  # task 5, seq 5
    drain(one, 100)
    for name, value in {"LOGGER_DATABASE_URL": logger_url, "REDIS_URL": redis_url,
                        "REDIS_NAMESPACE": namespace, "STREAM_PARTITIONS": "4"}.items():
        monkeypatch.setenv(name, value)
    listed = CliRunner().invoke(main, ["dead-letters", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    letter = json.loads(listed.output.strip().splitlines()[-1])
    assert (letter["partition"], letter["position"], letter["seq"]) == (1, 2, 5)
    assert CliRunner().invoke(main, ["dead-letters", "retry", letter["entry"]]).exit_code == 2
    assert table(engine, "SELECT task_id FROM task_state WHERE task_id = 5") == []
    retried = CliRunner().invoke(main, ["dead-letters", "retry", letter["entry"],
                                        "--partition", "1"])
    assert retried.exit_code == 0, retried.output
    assert table(engine, "SELECT task_id FROM task_state WHERE task_id = 5") == [(5,)]
    assert "0 dead letters" in CliRunner().invoke(main, ["dead-letters", "list"]).output
