"""Projector members sharing a partitioned log: each partition has one applier at a time;
a member that joins takes its share, a SIGKILLed member's partitions move to the others
within 5 s, and nothing is applied twice or skipped."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import redis

from services.logger_service.service_layer.projection import PROJECTION_NAME
from shared.stream.applier_lock import NoLock
from shared.stream.batch import Batch, Projection
from shared.stream.members import Members, PartitionLease
from shared.stream.redis_bus import RedisStreamBus
from testbed.polling import wait_for
from tests.integration.logger_service.conftest import sql_consumer, store, table
from tests.integration.logger_service.partitioned import (
    PARTITIONS,
    expected_lengths,
    history,
    published,
    snapshot,
)
from tests.integration.logger_service.test_projector_processes import messages
from tests.unit.logger_service.factories import DAY


def owned(process: subprocess.Popen) -> set[int]:
    """The partitions a member applies now, by what it logged."""
    mine: set[int] = set()
    for message in messages(process):
        if " now applies partition " in message:
            mine.add(int(message.rsplit(" ", 1)[1]))
        elif message.startswith("partition ") and "handing it over" in message:
            mine.discard(int(message.split(" ")[1]))
    return mine


def test_members_share_partitions_rebalance_on_join_and_take_over_a_killed_one(
        tasks_engine, engine, redis_client, streams, run_relay, events, reference,
        start_projector: Callable[..., subprocess.Popen]):
    made = history(events, 2000)
    for round_ in range(4):
        made += [events.updated(n, title=f"round {round_}") for n in range(1, 1999)]
        made.append(events.transfer(DAY.replace(day=10 + round_)))
    store(tasks_engine, made)
    run_relay(batch_size=1000)
    lengths = expected_lengths(made)
    wait_for(lambda: [published(redis_client, s) for s in streams] == lengths, 60)
    extra = {"STREAM_PARTITIONS": "4", "PROJECTOR_BATCH_SIZE": "50"}

    def applied() -> list[int]:
        found = dict(table(engine, "SELECT name, last_seq FROM projection_checkpoints"))
        return [int(found.get(PARTITIONS.checkpoint_name(PROJECTION_NAME, p), 0))
                for p in range(4)]

    one = start_projector("one", **extra)
    wait_for(lambda: owned(one) == {0, 1, 2, 3}, 20)
    two = start_projector("two", **extra)
    wait_for(lambda: (owned(one), owned(two)) == ({0, 2}, {1, 3}), 10)
    assert sum(applied()) < sum(lengths), "the backlog was applied before the kill"
    one.kill()
    killed = time.monotonic()
    wait_for(lambda: owned(two) == {0, 1, 2, 3}, 10)
    assert time.monotonic() - killed <= 5.0, "a killed member's partitions moved too late"
    wait_for(lambda: applied() == lengths, 120)
    assert snapshot(engine) == reference(), "nothing applied twice or skipped"


def test_members_agree_on_owners_and_a_dead_one_drops_out_after_its_ttl(
        redis_client: redis.Redis, namespace: str):
    key = f"{namespace}:members"
    ann, bob = Members(redis_client, key, "ann", 0.5, 0.05), Members(redis_client, key, "bob",
                                                                      0.5, 0.05)
    wait_for(lambda: ann.live() == bob.live() == ["ann", "bob"])
    assert [ann.owner(p) for p in range(4)] == [bob.owner(p) for p in range(4)] == [
        "ann", "bob", "ann", "bob"]
    wait_for(lambda: bob.live() == ["bob"], 5)  # ann stopped announcing itself
    assert [bob.owner(p) for p in range(4)] == ["bob"] * 4
    ann.live()
    bob.leave()
    wait_for(lambda: ann.live() == ["ann"])


class HeldProjection:
    """The projector's projection, whose batches wait for `release` before applying."""

    def __init__(self, projection: Projection) -> None:
        self.projection = projection
        self.entered = threading.Event()
        self.release = threading.Event()

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        with self.projection.batch() as batch:
            self.entered.set()
            self.release.wait(30)
            yield batch


def test_a_member_whose_appliers_are_busy_stays_a_member_past_its_ttl(
        tasks_engine, engine, redis_client, namespace, streams, run_relay, events):
    store(tasks_engine, history(events))
    run_relay()
    wait_for(lambda: published(redis_client, streams[0]) > 0)
    key = f"{namespace}:members"
    ann = Members(redis_client, key, "ann", 0.5, 0.05)
    bob = Members(redis_client, key, "bob", 0.5, 0.05)
    consumer = sql_consumer(engine, RedisStreamBus(redis_client, streams[0]))
    held = HeldProjection(consumer.projection)
    consumer.projection, consumer.lock = held, PartitionLease(NoLock(), ann, 0)
    stop = threading.Event()
    ann.start()
    applier = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    applier.start()
    try:
        assert held.entered.wait(10), "the applier took its first batch"
        busy_until = time.monotonic() + 4 * ann.ttl_seconds
        while time.monotonic() < busy_until:  # the applier is blocked all along
            assert bob.live() == ["ann", "bob"], "a busy member dropped out"
            time.sleep(0.05)
        assert applier.is_alive() and not held.release.is_set()
    finally:
        stop.set()
        held.release.set()
        applier.join(10)
        ann.stop()
    assert ann.beater is not None and not ann.beater.is_alive(), "the heartbeat stopped"
    wait_for(lambda: bob.live() == ["bob"])


def test_a_members_ttl_outlasts_its_longest_wait(redis_client: redis.Redis, namespace: str):
    key = f"{namespace}:members"
    assert Members(redis_client, key, "ann").ttl_seconds == 2.0
    assert Members(redis_client, key, "ann", longest_wait=5.0).ttl_seconds == 6.0
    with pytest.raises(ValueError, match="must outlast its longest wait"):
        Members(redis_client, key, "ann", ttl_seconds=2.0, longest_wait=2.0)
