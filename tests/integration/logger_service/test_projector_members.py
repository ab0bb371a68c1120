"""Projector members sharing a partitioned log: each partition has one applier at a time;
a member that joins takes its share, a SIGKILLed member's partitions move to the others
within 5 s, and nothing is applied twice or skipped."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import redis

from services.logger_service.service_layer.projection import PROJECTION_NAME
from shared.stream.members import Members
from testbed.polling import wait_for
from tests.integration.logger_service.conftest import store, table
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
