"""Revocation marks in a real Redis: precise, never moved back, forgotten when they no
longer matter."""

from __future__ import annotations

import pytest
import redis

from shared.revocation import KEY_SUFFIX, RedisRevocations

LIFETIME = 930.0


@pytest.fixture
def key(namespace: str) -> str:
    return f"{namespace}:{KEY_SUFFIX}"


def store(client: redis.Redis, key: str, now: float) -> RedisRevocations:
    """Marks whose clock reads `now`."""
    return RedisRevocations(client, key, LIFETIME, clock=lambda: now)


def test_a_mark_keeps_its_fraction_of_a_second(redis_client: redis.Redis, key: str) -> None:
    store(redis_client, key, 1_800_000_000.123456).revoke(7)
    assert store(redis_client, key, 1_800_000_001.0).recent() == {7: 1_800_000_000.123456}


def test_a_mark_is_never_moved_back(redis_client: redis.Redis, key: str) -> None:
    store(redis_client, key, 1_800_000_010.5).revoke(7)
    store(redis_client, key, 1_800_000_005.0).revoke(7)  # a writer whose clock is behind
    assert store(redis_client, key, 1_800_000_011.0).recent() == {7: 1_800_000_010.5}


def test_marks_older_than_a_token_can_live_are_forgotten(redis_client: redis.Redis,
                                                         key: str) -> None:
    start = 1_800_000_000.0
    store(redis_client, key, start).revoke(7)
    store(redis_client, key, start + 600).revoke(8)
    assert set(store(redis_client, key, start + LIFETIME - 1).recent()) == {7, 8}
    assert store(redis_client, key, start + LIFETIME + 1).recent() == {8: start + 600}
    store(redis_client, key, start + LIFETIME + 1).revoke(9)
    assert {int(m) for m in redis_client.zrange(key, 0, -1)} == {8, 9}  # trimmed on write
    assert 0 < redis_client.ttl(key) <= LIFETIME + 1
