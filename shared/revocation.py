"""Revocation marks: "access tokens of user U issued at or before time T are refused".

The auth service records a mark in its database, in the transaction that takes power away
from a user (disabled, role changed, logged out everywhere), and copies it here after the
commit. The marks of every user live in one Redis sorted set, `<namespace>:revoked-before`
(member: user id, score: the mark's Unix time with sub-second precision). Redis holds only a
copy: the auth service republishes every recent mark from its database every few seconds,
so a mark that could not be written, or that Redis lost, is back within seconds. Each
verifying process reads the recent marks of all users at most once per `REFRESH_SECONDS`, so
a check costs a dictionary lookup, not a Redis round trip.

A mark matters only as long as a token issued before it can live (`TokenSettings.max_lifetime`):
older marks are trimmed on every write, and the whole set expires when nothing is written.

When the marks cannot be read, the last copy is used for at most `STALE_AFTER_SECONDS`; after
that the Redis error propagates and the request is answered 503 (fail closed, see
docs/auth.md).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import redis

from shared.logs import first_line
from shared.redis_client import redis_client
from shared.settings import CommonSettings

log = logging.getLogger("taskstream.auth.revocation")

KEY_SUFFIX = "revoked-before"
REFRESH_SECONDS = 1.0  # how old a process's copy of the marks may be
STALE_AFTER_SECONDS = 2.5  # how long a copy is used while Redis cannot be read
RETRY_SECONDS = 0.2  # how often a failed read is retried meanwhile


class TokenRevoker(Protocol):
    """Where the auth service tells the verifiers, after its commit, that a user's tokens are
    no longer good."""

    def revoke(self, user_id: int, at: float) -> None:
        """Refuse the access tokens of `user_id` issued at or before `at` (Unix seconds).

        Best effort: when the mark cannot be written now it logs a warning and returns (the
        database holds the mark, and the auth service republishes it within seconds).
        """


class MarkSink(Protocol):
    """Where the auth service republishes the marks it holds."""

    def publish(self, marks: Mapping[int, float]) -> None:
        """Write these marks (user id -> Unix time), never moving one back; raise if it fails."""


class MarkSource(Protocol):
    """Where verifiers read the marks from."""

    def recent(self) -> dict[int, float]:
        """The marks that can still matter: user id -> time (Unix seconds)."""


@dataclass(frozen=True)
class RedisRevocations:
    """The marks in one Redis sorted set."""

    client: redis.Redis
    key: str
    lifetime: float  # how long a mark matters
    clock: Callable[[], float] = time.time

    def revoke(self, user_id: int, at: float) -> None:
        """Mark `at` for `user_id`; only log when Redis cannot take it (see TokenRevoker)."""
        try:
            self.publish({user_id: at})
        except (redis.RedisError, OSError) as exc:
            log.warning("could not write the revocation mark of user %s (%s); the auth "
                        "service republishes it from its database within seconds", user_id,
                        first_line(exc))

    def publish(self, marks: Mapping[int, float]) -> None:
        """Write the marks in one round trip (never moving one back); drop marks that no
        longer matter."""
        if not marks:
            return
        pipeline = self.client.pipeline(transaction=True)
        pipeline.zadd(self.key, {str(user_id): at for user_id, at in marks.items()}, gt=True)
        pipeline.zremrangebyscore(self.key, "-inf", f"({self.clock() - self.lifetime}")
        pipeline.expire(self.key, math.ceil(self.lifetime) + 1)
        pipeline.execute()

    def recent(self) -> dict[int, float]:
        """The marks of the last `lifetime` seconds."""
        rows: list[tuple[bytes, float]] = self.client.zrangebyscore(  # type: ignore[assignment]
            self.key, self.clock() - self.lifetime, "+inf", withscores=True)
        return {int(member): float(score) for member, score in rows}


def redis_revocations(common: CommonSettings) -> RedisRevocations:
    """The marks of this deployment, over a client that gives up quickly."""
    client = redis_client(common.redis_url, socket_timeout=0.5,
                                  socket_connect_timeout=0.5)
    return RedisRevocations(client, common.stream_key(KEY_SUFFIX), common.tokens.max_lifetime)


class RevocationList:
    """A process's copy of the marks, re-read at most once per `REFRESH_SECONDS`."""

    def __init__(self, source: MarkSource, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.clock = clock
        self.marks: Mapping[int, float] = {}
        self.read_at = float("-inf")  # when the copy was read
        self.next_read = float("-inf")
        self.lock = threading.Lock()

    def revoked(self, user_id: int, issued_at: float) -> bool:
        """True if a token of `user_id` issued at `issued_at` was revoked since."""
        mark = self._current().get(user_id)
        return mark is not None and issued_at <= mark

    def _current(self) -> Mapping[int, float]:
        if self.clock() < self.next_read:
            return self.marks
        with self.lock:
            now = self.clock()
            if now >= self.next_read:
                self._read(now)
            return self.marks

    def _read(self, now: float) -> None:
        try:
            self.marks = self.source.recent()
        except (redis.RedisError, OSError) as exc:
            if now - self.read_at > STALE_AFTER_SECONDS:
                raise
            log.warning("could not read revocation marks, using a %.1f s old copy: %s",
                        now - self.read_at, exc)
            self.next_read = now + RETRY_SECONDS
            return
        self.read_at, self.next_read = now, now + REFRESH_SECONDS
