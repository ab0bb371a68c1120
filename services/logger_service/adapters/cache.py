"""The Redis cache of date pages, keyed by a per-date generation the projector bumps.

A reader looks up the date's generation, then the page cached under it. The projector bumps
the generation after every commit that touched the date, so a page cached before the change
is never found again (it expires on its own), and no reader can be served a result older
than the committed projection.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from typing import Any

import redis

log = logging.getLogger("taskstream.logger.cache")


class DatePageCache:
    """Cached `GET /tasks?date=` pages under `<namespace>:logger:...`."""

    def __init__(self, client: redis.Redis, namespace: str, ttl_seconds: int = 300) -> None:
        self.client = client
        self.prefix = f"{namespace}:logger"
        self.ttl_seconds = ttl_seconds

    def generation_key(self, day: dt.date) -> str:
        """The key of a date's generation counter."""
        return f"{self.prefix}:gen:{day.isoformat()}"

    def page_key(self, day: dt.date, generation: int, page: int, per_page: int) -> str:
        """The key of one cached page of one generation of a date."""
        return f"{self.prefix}:page:{day.isoformat()}:g{generation}:{page}:{per_page}"

    def generation(self, day: dt.date) -> int:
        """The date's current generation (0 before any change)."""
        return int(self.client.get(self.generation_key(day)) or 0)

    def get(self, key: str) -> Any | None:
        """The cached value under `key`, if any."""
        raw = self.client.get(key)
        return None if raw is None else json.loads(raw)

    def put(self, key: str, value: Any) -> None:
        """Cache a value for the configured time."""
        self.client.set(key, json.dumps(value, separators=(",", ":")), ex=self.ttl_seconds)

    def bump(self, days: Iterable[dt.date]) -> None:
        """Invalidate the dates' pages by moving to their next generation."""
        pipe = self.client.pipeline(transaction=False)
        for day in days:
            pipe.incr(self.generation_key(day))
        pipe.execute()


def bump_quietly(cache: DatePageCache) -> Any:
    """An after-commit hook that bumps generations and logs (not raises) a Redis failure."""

    def after_commit(days: Iterable[dt.date]) -> None:
        try:
            cache.bump(days)
        except redis.RedisError as exc:  # pages expire after the TTL anyway
            log.error("could not invalidate cached pages of %s: %s", list(days), exc)

    return after_commit
