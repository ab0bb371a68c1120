"""The date cache on a real Redis: one round trip, and no page outlives its date's version."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
from flask.testing import FlaskClient
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.engine import Engine

from services.logger_service.adapters.cache import (
    VERSION_TTL_SECONDS,
    DatePageCache,
    VersionPublisher,
    Versions,
)
from services.logger_service.adapters.projection_store import versions_after
from services.logger_service.service_layer.queries import CachedPage
from shared.stream.redis_bus import RedisStreamBus
from tests.integration.logger_service.conftest import drain, member, sql_consumer
from tests.proxy import CuttableProxy
from tests.unit.logger_service.factories import DAY, EventFactory

PAGE = CachedPage(1, b'[{"id": 1}]')
URL = f"/tasks?date={DAY.isoformat()}"


def test_a_page_is_served_only_under_the_version_it_was_read_in(
        redis_client: redis.Redis, namespace: str) -> None:
    cache = DatePageCache(redis_client, namespace, 60, version_of=lambda day: 4)
    version, missing = cache.lookup(DAY, 1, 20)  # no version in Redis: the database's
    assert (version, missing) == (4, None)
    cache.store(DAY, 1, 20, 4, PAGE)
    assert cache.lookup(DAY, 1, 20) == (4, PAGE)
    cache.publish({DAY: 5})
    assert cache.lookup(DAY, 1, 20) == (5, None)


def test_a_page_read_before_a_change_but_stored_after_it_is_never_served(
        cache: DatePageCache) -> None:
    cache.publish({DAY: 1})
    old_version, _ = cache.lookup(DAY, 1, 20)  # a reader starts, reads old rows...
    cache.publish({DAY: 2})  # ...the projector commits a change of the date...
    cache.store(DAY, 1, 20, old_version, CachedPage(0, b"[]"))  # ...the reader stores
    assert cache.lookup(DAY, 1, 20) == (2, None)


def test_pages_of_other_sizes_and_dates_are_apart(cache: DatePageCache) -> None:
    cache.publish({DAY: 1})
    cache.store(DAY, 1, 20, 1, CachedPage(3, b"[1, 2, 3]"))
    assert cache.lookup(DAY, 1, 10)[1] is None
    assert cache.lookup(DAY, 2, 20)[1] is None
    assert cache.lookup(DAY + dt.timedelta(days=1), 1, 20)[1] is None


def test_a_missing_version_never_matches_a_page_and_is_seeded_from_the_database(
        redis_client: redis.Redis, namespace: str) -> None:
    database = {DAY: 4}
    cache = DatePageCache(redis_client, namespace, 60, version_of=lambda day: database[day])
    cache.store(DAY, 1, 20, 0, PAGE)  # what a missing version once read as
    assert cache.lookup(DAY, 1, 20) == (4, None)
    cache.store(DAY, 1, 20, 4, PAGE)
    redis_client.delete(cache.version_key(DAY))  # evicted
    assert cache.lookup(DAY, 1, 20) == (4, None)  # a miss, though the page carries 4
    assert cache.lookup(DAY, 1, 20) == (4, PAGE)  # seeded again: 4 is current
    assert 0 < redis_client.ttl(cache.version_key(DAY)) <= VERSION_TTL_SECONDS


def test_versions_only_grow_and_a_date_being_changed_is_not_cached(
        cache: DatePageCache, redis_client: redis.Redis) -> None:
    cache.publish({DAY: 5})
    cache.publish({DAY: 3})  # a late publish of an older version
    assert cache.lookup(DAY, 1, 20) == (5, None)
    cache.publish({DAY: 6}, changing=True)
    assert cache.lookup(DAY, 1, 20) == (None, None)  # read the database, cache nothing
    assert 0 < redis_client.ttl(cache.version_key(DAY)) <= 60
    cache.publish({DAY: 5})  # an older version does not end the change
    assert cache.lookup(DAY, 1, 20) == (None, None)
    cache.publish({DAY: 6})
    assert cache.lookup(DAY, 1, 20) == (6, None)
    assert 60 < redis_client.ttl(cache.version_key(DAY)) <= VERSION_TTL_SECONDS
    cache.publish({DAY: 6}, changing=True)  # a committed version is not reopened
    assert cache.lookup(DAY, 1, 20) == (6, None)


@pytest.fixture
def cut_redis(redis_url: str) -> Iterator[tuple[CuttableProxy, redis.Redis]]:
    """A client of the test's Redis through a proxy the test can cut."""
    url = urlsplit(redis_url)
    proxy = CuttableProxy((url.hostname or "127.0.0.1", url.port or 6379))
    client = redis.Redis(host="127.0.0.1", port=proxy.port, db=int(url.path.strip("/") or 0),
                         socket_timeout=2, retry=Retry(NoBackoff(), 0))
    yield proxy, client
    client.close()
    proxy.close()


def test_a_lost_publish_leaves_the_date_withdrawn_until_the_next_tick_publishes_it(
        redis_client: redis.Redis, namespace: str, cut_redis) -> None:
    proxy, through_proxy = cut_redis
    database: dict[dt.date, int] = {DAY: 1}

    def committed_after(version: int) -> Versions:
        return {day: v for day, v in database.items() if v > version}

    reader = DatePageCache(redis_client, namespace, 60, version_of=lambda day: database[day])
    publisher = VersionPublisher(DatePageCache(through_proxy, namespace, 60), committed_after,
                                 interval=0)
    publisher.tick()  # a start publishes what the database has
    cache_the_page(reader, 1)
    publisher.changing({DAY: 2})
    database[DAY] = 2  # committed
    proxy.cut()
    publisher.changed({DAY: 2})  # lost, and logged
    assert reader.lookup(DAY, 1, 20) == (None, None), "the old page was served as current"
    publisher.tick()  # Redis still out of reach: nothing raised
    proxy.restore()
    publisher.tick()
    assert reader.lookup(DAY, 1, 20) == (2, None)


def cache_the_page(cache: DatePageCache, version: int) -> None:
    assert cache.lookup(DAY, 1, 20) == (version, None)
    cache.store(DAY, 1, 20, version, PAGE)
    assert cache.lookup(DAY, 1, 20) == (version, PAGE)


def statuses(client: FlaskClient) -> tuple[str, list[str]]:
    """The X-Cache header and the statuses of the day's page."""
    response = client.get(URL, headers=member())
    return response.headers["X-Cache"], [entry["status"] for entry in response.get_json()]


def test_an_evicted_version_key_never_turns_an_old_page_current(
        client: FlaskClient, bus: RedisStreamBus, events: EventFactory, make_consumer,
        cache: DatePageCache, redis_client: redis.Redis) -> None:
    consumer = make_consumer()
    bus.publish([events.created(1), events.transfer()])
    drain(consumer)
    assert [statuses(client), statuses(client)] == [("MISS", ["active"]), ("HIT", ["active"])]
    redis_client.delete(cache.version_key(DAY))  # evicted
    bus.publish([events.status(1, "active", "completed")])
    drain(consumer)
    assert statuses(client) == ("MISS", ["completed"])
    assert statuses(client) == ("HIT", ["completed"])
    redis_client.delete(cache.version_key(DAY))  # evicted again, nothing changed since
    assert [statuses(client), statuses(client)] == [
        ("MISS", ["completed"]), ("HIT", ["completed"])]


def test_a_projector_that_loses_redis_after_its_commit_never_lets_an_old_page_be_served(
        client: FlaskClient, bus: RedisStreamBus, events: EventFactory, engine: Engine,
        namespace: str, cut_redis) -> None:
    proxy, through_proxy = cut_redis

    class CutAfterWithdrawing(VersionPublisher):
        """Redis goes away right after the dates are withdrawn, before the commit."""

        def changing(self, versions: Versions) -> None:
            super().changing(versions)
            if cut_next:
                proxy.cut()

    cut_next = False
    versions = CutAfterWithdrawing(DatePageCache(through_proxy, namespace, 60),
                                   lambda after: versions_after(engine, after), interval=0)
    consumer = sql_consumer(engine, bus, versions=versions)
    bus.publish([events.created(1), events.transfer()])
    drain(consumer)
    assert [statuses(client), statuses(client)] == [("MISS", ["active"]), ("HIT", ["active"])]
    bus.publish([events.status(1, "active", "completed")])
    cut_next = True
    drain(consumer)  # applied and committed; publishing the new version failed
    assert [statuses(client), statuses(client)] == [
        ("MISS", ["completed"]), ("MISS", ["completed"])]
    proxy.restore()
    versions.tick()  # the projector's loop publishes it again
    assert [statuses(client), statuses(client)] == [
        ("MISS", ["completed"]), ("HIT", ["completed"])]
