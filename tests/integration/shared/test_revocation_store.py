"""Revocation marks in a real Redis: precise, never moved back, forgotten when they no
longer matter."""

from __future__ import annotations

import pytest
import redis

from services.embedded import free_port
from shared.revocation import KEY_SUFFIX, RedisRevocations

LIFETIME = 930.0


@pytest.fixture
def key(namespace: str) -> str:
    return f"{namespace}:{KEY_SUFFIX}"


def store(client: redis.Redis, key: str, now: float) -> RedisRevocations:
    """Marks whose clock reads `now`."""
    return RedisRevocations(client, key, LIFETIME, clock=lambda: now)


def revoke_at(client: redis.Redis, key: str, user_id: int, now: float) -> None:
    """Write the mark `now` for `user_id`, with a clock that reads `now`."""
    store(client, key, now).revoke(user_id, now)


def test_a_mark_keeps_its_fraction_of_a_second(redis_client: redis.Redis, key: str) -> None:
    revoke_at(redis_client, key, 7, 1_800_000_000.123456)
    assert store(redis_client, key, 1_800_000_001.0).recent() == {7: 1_800_000_000.123456}


def test_a_mark_is_never_moved_back(redis_client: redis.Redis, key: str) -> None:
    revoke_at(redis_client, key, 7, 1_800_000_010.5)
    revoke_at(redis_client, key, 7, 1_800_000_005.0)  # a writer whose clock is behind
    store(redis_client, key, 1_800_000_011.0).publish({7: 1_800_000_001.0, 8: 1_800_000_002.0})
    assert store(redis_client, key, 1_800_000_011.0).recent() == {7: 1_800_000_010.5,
                                                                 8: 1_800_000_002.0}


def test_marks_older_than_a_token_can_live_are_forgotten(redis_client: redis.Redis,
                                                         key: str) -> None:
    start = 1_800_000_000.0
    revoke_at(redis_client, key, 7, start)
    revoke_at(redis_client, key, 8, start + 600)
    assert set(store(redis_client, key, start + LIFETIME - 1).recent()) == {7, 8}
    assert store(redis_client, key, start + LIFETIME + 1).recent() == {8: start + 600}
    revoke_at(redis_client, key, 9, start + LIFETIME + 1)
    assert {int(m) for m in redis_client.zrange(key, 0, -1)} == {8, 9}  # trimmed on write
    assert 0 < redis_client.ttl(key) <= LIFETIME + 1


def test_a_mark_that_cannot_be_written_is_only_logged(caplog: pytest.LogCaptureFixture,
                                                      key: str) -> None:
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
    store(dead, key, 1_800_000_000.0).revoke(7, 1_800_000_000.0)
    assert "could not write the revocation mark of user 7" in caplog.text
    with pytest.raises(redis.ConnectionError):
        store(dead, key, 1_800_000_000.0).publish({7: 1_800_000_000.0})
