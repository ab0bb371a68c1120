"""The gateway's moving-window storage: limits' semantics, one Redis round trip per request."""

from __future__ import annotations

import time

import redis
from flask import Flask
from limits.storage import RedisStorage

from services.api_gateway.adapters.window_storage import (
    WindowReportingRedisStorage,
    storage_uri,
)


def _storages(redis_url: str, namespace: str) -> tuple[WindowReportingRedisStorage,
                                                      RedisStorage]:
    ours = WindowReportingRedisStorage(storage_uri(redis_url), key_prefix=namespace)
    reference = RedisStorage(redis_url, key_prefix=namespace)
    return ours, reference


def test_acquires_and_windows_match_limits_own_storage(redis_url: str, namespace: str,
                                                       redis_client: redis.Redis) -> None:
    ours, reference = _storages(redis_url, namespace)
    redis_client.lpush(f"{namespace}:k", time.time() - 120)  # outside the 60 s window
    acquired = []
    for _ in range(4):
        acquired.append(ours.acquire_entry("k", 3, 60))
        start, count = ours.get_moving_window("k", 3, 60)
        assert (round(start, 3), count) == tuple(
            round(v, 3) for v in reference.get_moving_window("k", 3, 60))
    assert acquired == [True, True, True, False]
    assert count == 3


def test_the_window_seen_by_a_request_acquire_is_answered_without_redis(
        redis_url: str, namespace: str, redis_client: redis.Redis) -> None:
    ours, _ = _storages(redis_url, namespace)
    app = Flask("window-test")
    with app.test_request_context():
        before = time.time()
        assert ours.acquire_entry("k", 5, 60)
        redis_client.delete(f"{namespace}:k")  # what a second round trip would now read
        start, count = ours.get_moving_window("k", 5, 60)
        assert count == 1 and before <= start <= time.time()
        # asked again (or by a later request), the window is read from Redis
        assert ours.get_moving_window("k", 5, 60)[1] == 0
    with app.test_request_context():
        assert ours.get_moving_window("k", 5, 60)[1] == 0
