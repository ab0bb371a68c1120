"""Every Redis use of Taskstream on a Redis Cluster, with the key names the services use."""

from __future__ import annotations

import datetime as dt

import redis

from services.logger_service.adapters.cache import DatePageCache
from services.logger_service.service_layer.queries import CachedPage
from shared.revocation import KEY_SUFFIX, RedisRevocations, RevocationList
from shared.settings import CommonSettings
from shared.stream.entries import Delivery
from testbed.polling import wait_for
from testbed.redis_cluster import LocalRedisCluster
from tests.fakes.bus import PublishingRedisBus
from tests.unit.logger_service.factories import EventFactory

GROUP = "projector"


def common_settings(redis_url: str, namespace: str) -> CommonSettings:
    return CommonSettings(environment="test", redis_url=redis_url, namespace=namespace)


def event_stream(client: redis.Redis, redis_url: str, namespace: str) -> PublishingRedisBus:
    return PublishingRedisBus(client, common_settings(redis_url, namespace).stream_key())


def test_the_stream_and_the_keys_made_from_it_share_one_slot(
        redis_client: redis.Redis, redis_url: str, namespace: str) -> None:
    bus = event_stream(redis_client, redis_url, namespace)
    keys = [bus.stream, bus.dead_stream, bus.backfill_key, bus.backfill_requests_key]
    assert bus.stream == "{" + namespace + ":events}"
    assert len({redis_client.keyslot(key) for key in keys}) == 1  # type: ignore[attr-defined]


def test_a_consumer_group_reads_claims_dead_letters_and_trims_on_the_cluster(
        redis_client: redis.Redis, redis_url: str, namespace: str) -> None:
    bus = event_stream(redis_client, redis_url, namespace)
    events = EventFactory()
    assert bus.publish([events.created(n) for n in range(1, 6)]) == 5
    assert bus.publish([]) == 0
    bus.ensure_group(GROUP)
    first = bus.read_new(GROUP, "a", 3, 100)
    assert [d.seq for d in first] == [1, 2, 3]
    assert bus.ack(GROUP, [first[0].entry_id]) == 1
    claimed = bus.claim_stale(GROUP, "b", 0, 10)  # "a" died holding 2 and 3
    assert [d.seq for d in claimed] == [2, 3] and all(d.deliveries == 2 for d in claimed)
    bus.dead_letter(GROUP, claimed[0], "boom")  # XADD + XACK in one MULTI
    assert bus.dead_letter_count() == 1
    assert bus.ack(GROUP, [claimed[1].entry_id]) == 1
    assert [d.seq for d in bus.read_new(GROUP, "b", 10, 100)] == [4, 5]
    assert [d.seq for d in bus.read_pending(GROUP, "b", 10)] == [4, 5]
    bus.ack(GROUP, ["4-0", "5-0"])
    assert bus.trim(keep=1) == 4
    assert bus.group_info(GROUP) is not None and bus.head() == 5


def test_a_gap_is_filled_from_the_backfill_set(
        redis_client: redis.Redis, redis_url: str, namespace: str) -> None:
    bus = event_stream(redis_client, redis_url, namespace)
    assert bus.backfill(1, 2, 10) == []
    assert bus.backfill_requests(10) == [(1, 2)]
    bus.offer_backfill([(1, "one"), (2, "two")])
    assert bus.backfill(1, 2, 10) == [Delivery("1-0", "one", backfilled=True),
                                      Delivery("2-0", "two", backfilled=True)]
    bus.release_backfill(2)
    assert bus.backfill(1, 1, 10) == []


def test_revocation_marks_are_written_and_read(
        redis_client: redis.Redis, redis_url: str, namespace: str) -> None:
    key = common_settings(redis_url, namespace).stream_key(KEY_SUFFIX)
    marks = RedisRevocations(redis_client, key, 900.0)
    marks.revoke(7, 1_000.0)
    marks.publish({7: 900.0, 8: marks.clock() - 1})  # 7's mark is never moved back
    assert set(marks.recent()) == {8}
    marks.revoke(7, marks.clock())
    assert RevocationList(marks).revoked(7, marks.clock() - 5)


def test_date_pages_spread_over_the_nodes_and_each_date_is_one_round_trip(
        redis_client: redis.Redis, cluster: LocalRedisCluster, namespace: str) -> None:
    cache = DatePageCache(redis_client, namespace, 60, version_of=lambda day: 1)
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(12)]
    cache.publish(dict.fromkeys(days, 3))
    for day in days:
        assert cache.lookup(day, 1, 20) == (3, None)
        cache.store(day, 1, 20, 3, CachedPage(1, b"[]"))
        assert cache.lookup(day, 1, 20) == (3, CachedPage(1, b"[]"))
    cache.publish({days[0]: 4}, changing=True)
    assert cache.lookup(days[0], 1, 20) == (None, None)
    masters = {cluster.master_of(cache.version_key(day)).port for day in days}
    assert len(masters) == 3


def test_the_stream_survives_the_loss_of_its_master(
        redis_client: redis.Redis, cluster: LocalRedisCluster, redis_url: str,
        namespace: str) -> None:
    bus = event_stream(redis_client, redis_url, namespace)
    events = EventFactory()
    bus.publish([events.created(n) for n in range(1, 21)])
    bus.ensure_group(GROUP)
    assert len(bus.read_new(GROUP, "a", 10, 100)) == 10
    cluster.wait_replicated(bus.stream)
    victim = cluster.kill_master(bus.stream)
    try:
        more = [events.created(n) for n in range(21, 41)]
        wait_for(lambda: _published(bus, more), timeout=30, what="a publish after failover")
        read = bus.read_pending(GROUP, "a", 100) + bus.read_new(GROUP, "a", 100, 100)
        assert [d.seq for d in read] == list(range(1, 41))
    finally:
        cluster.restart(victim)


def _published(bus: PublishingRedisBus, events: list) -> bool:  # type: ignore[type-arg]
    try:
        bus.publish(events)
    except redis.RedisError:
        return False
    return True
