"""The partition count recorded beside the streams: a relay, projector or `min_seq` read with
another `STREAM_PARTITIONS` than the streams were written with refuses, and `repartition`
refuses while the relay runs and leaves nothing half done when it dies before its commit."""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner

from services.entrypoints.cli import main
from services.logger_service.adapters.partition_positions import PartitionedPosition
from services.logger_service.entrypoints import repartition_cli
from services.logger_service.service_layer import partition_catch_up as catch_up
from services.logger_service.service_layer.projection import PROJECTION_NAME
from services.task_service.adapters.partition_reads import PartitionReads
from services.task_service.adapters.relay_status import read_status
from services.task_service.config import RelayConfig
from services.task_service.service_layer.partitioned_relay import PartitionedRelay
from shared.stream.partitions import PartitionCountMismatch, Partitioning, count_key
from shared.stream.redis_bus import RedisStreamBus
from testbed.polling import wait_for
from tests.integration.logger_service.conftest import store
from tests.integration.logger_service.partitioned import expected_lengths, history, published
from tests.integration.logger_service.test_partition_operations import checkpoints, cli_env
from tests.integration.logger_service.test_projector_processes import messages

__all__ = ["cli_env"]  # the fixture, used here

TWO = Partitioning(2)


def relay_of(tasks_engine, redis_client, namespace, partitioning):
    return PartitionedRelay(
        tasks_engine, RedisStreamBus(redis_client, f"{namespace}:events"),
        [RedisStreamBus(redis_client, s)
         for s in partitioning.streams(namespace, f"{namespace}:events")],
        RelayConfig(batch_size=7, poll_seconds=0.1, namespace=namespace))


def test_a_relay_projector_and_min_seq_of_another_count_refuse_the_streams(
        tasks_engine, engine, redis_client, namespace, streams, run_relay, events,
        start_projector, caplog):
    made = history(events)
    store(tasks_engine, made)
    run_relay()  # four partitions
    wait_for(lambda: [published(redis_client, s) for s in streams] == expected_lengths(made))
    assert [redis_client.get(count_key(s)) for s in streams] == [b"4"] * 4

    with pytest.raises(PartitionCountMismatch, match=r"STREAM_PARTITIONS=2: run `taskstream "
                                                     r"projections repartition --partitions 2"):
        relay_of(tasks_engine, redis_client, namespace, TWO).publish_pending()
    assert [published(redis_client, s) for s in streams] == expected_lengths(made)

    projector = start_projector("two", STREAM_PARTITIONS="2")
    assert projector.wait(30) == 1
    assert any("STREAM_PARTITIONS=2" in m and "projections repartition" in m
               for m in messages(projector)), messages(projector)

    # The checkpoints of two partitions at the head, as `repartition` sets them, while the
    # four-partition relay goes on: its marks must not make the two-partition position run
    # ahead of what those checkpoints applied.
    with engine.begin() as connection:
        catch_up.set_positions(connection, TWO, PartitionReads(tasks_engine, TWO), len(made))
    store(tasks_engine, [events.updated(n, title=f"later {n}") for n in range(1, 30)])
    wait_for(lambda: published(redis_client, f"{namespace}:events") == len(made) + 29)
    position = PartitionedPosition(engine, redis_client, TWO,
                                   TWO.streams(namespace, f"{namespace}:events"),
                                   PROJECTION_NAME)
    with caplog.at_level(logging.ERROR):
        assert position() == 0
    assert "projections repartition" in caplog.text


def test_repartition_refuses_while_the_relay_runs_and_a_crash_before_its_commit_is_safe(
        tasks_engine, engine, redis_client, namespace, streams, run_relay, events, cli_env,
        monkeypatch):
    made = history(events)
    store(tasks_engine, made)
    relay = run_relay()
    wait_for(lambda: [published(redis_client, s) for s in streams] == expected_lengths(made))
    cli_env(4)
    refused = CliRunner().invoke(main, ["projections", "repartition", "--partitions", "2"])
    assert refused.exit_code == 1 and "stop the relay" in refused.output, refused.output
    relay.stop()
    wait_for(lambda: "stopped_at" in read_status(redis_client, namespace))

    dropped = repartition_cli._drop_streams

    def drop_then_die(*args):
        dropped(*args)
        raise RuntimeError("killed between dropping the streams and the commit")

    monkeypatch.setattr(repartition_cli, "_drop_streams", drop_then_die)
    died = CliRunner().invoke(main, ["projections", "repartition", "--partitions", "2"])
    assert isinstance(died.exception, RuntimeError), died.output
    assert checkpoints(engine, TWO) == [0, 0], "no checkpoint of two partitions committed"
    assert not any(redis_client.exists(s, count_key(s)) for s in streams)
    monkeypatch.setattr(repartition_cli, "_drop_streams", dropped)
    done = CliRunner().invoke(main, ["projections", "repartition", "--partitions", "2"])
    assert done.exit_code == 0, done.output
    assert checkpoints(engine, TWO) == expected_lengths(made, TWO)
    run_relay(partitioning=TWO)
    two = TWO.streams(namespace, f"{namespace}:events")
    wait_for(lambda: [published(redis_client, s) for s in two] == expected_lengths(made, TWO))
    assert [redis_client.get(count_key(s)) for s in two] == [b"2", b"2"]
