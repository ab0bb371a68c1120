"""The partitioned log on the cluster: each partition's keys in one slot, the partitions spread
over the masters, one pipeline per node, and a redirection sent again through the cluster."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import redis
from sqlalchemy import create_engine

from services.task_service.config import RelayConfig
from services.task_service.service_layer.partitioned_relay import PartitionedRelay
from shared.events import decode
from shared.redis_client import pipelined
from shared.stream.partitions import Partitioning, mark_key
from shared.stream.redis_bus import RedisStreamBus
from testbed.polling import wait_for
from tests.integration.logger_service.conftest import store
from tests.unit.logger_service.factories import EventFactory

PARTITIONS = Partitioning(4)


def test_partitions_spread_over_the_masters_and_each_is_numbered_1_to_n(
        fresh_database: Callable[[str], str], redis_client: redis.Redis, namespace: str):
    engine = create_engine(fresh_database("tasks"))
    events = EventFactory()
    made = [events.created(n) for n in range(1, 41)] + [events.transfer()]
    store(engine, made)
    streams = PARTITIONS.streams(namespace, f"{{{namespace}:events}}")
    relay = PartitionedRelay(
        engine, RedisStreamBus(redis_client, f"{{{namespace}:events}}"),
        [RedisStreamBus(redis_client, stream) for stream in streams],
        RelayConfig(batch_size=9, poll_seconds=0.1, namespace=namespace))
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: all(redis_client.exists(s) and redis_client.xlen(s) == 11
                             for s in streams))
    finally:
        relay.stop()
        thread.join(10)
        engine.dispose()
    nodes = {redis_client.get_node_from_key(s).name for s in streams}  # type: ignore[attr-defined]
    assert len(nodes) >= 2, "the partitions sit on more than one master"
    for partition, stream in enumerate(streams):
        assert redis_client.cluster_keyslot(stream) == redis_client.cluster_keyslot(
            mark_key(stream))
        entries = redis_client.xrange(stream)
        assert [e.decode() for e, _ in entries] == [f"{n}-0" for n in range(1, 12)]
        assert all(PARTITIONS.owns(partition, decode(f[b"event"]).task_id) for _, f in entries)
        assert redis_client.get(mark_key(stream)) == b"11:41"


def test_a_redirected_pipeline_is_sent_again_through_the_cluster(
        redis_client: redis.Redis, namespace: str, monkeypatch: pytest.MonkeyPatch):
    keys = [f"{namespace}:k:{{{n}}}" for n in range(8)]
    right = redis_client.get_node_from_key  # type: ignore[attr-defined]
    masters = redis_client.get_primaries()  # type: ignore[attr-defined]
    wrong = {key: next(m for m in masters if m.name != right(key).name) for key in keys}
    monkeypatch.setattr(redis_client, "get_node_from_key", lambda key: wrong[key])
    replies = pipelined(redis_client, [("SET", key, "v") for key in keys])
    monkeypatch.undo()
    assert all(reply is True or reply == b"OK" for reply in replies), replies
    assert [redis_client.get(key) for key in keys] == [b"v"] * 8
