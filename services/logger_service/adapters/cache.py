"""The Redis cache of date pages, tagged with a per-date generation the projector bumps.

A page is cached under its date, page and size, with the generation it was read under.
A reader fetches the date's current generation and the cached page in one MGET and uses
the page only when the two agree. The projector bumps the generation after every commit
that touched the date, so a page read before the change is never served again (it is
replaced by the next reader, or expires), and no reader can be served a result older than
the committed projection. Pages are kept as the JSON the API answers with, so a hit is
passed on without being decoded.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

import redis

from services.logger_service.service_layer.queries import CachedPage

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

    def page_key(self, day: dt.date, page: int, per_page: int) -> str:
        """The key of one cached page of a date."""
        return f"{self.prefix}:page:{day.isoformat()}:{page}:{per_page}"

    def lookup(self, day: dt.date, page: int, per_page: int) -> tuple[int, CachedPage | None]:
        """The date's current generation and the page cached under it, if any."""
        generation, raw = self.client.mget(self.generation_key(day),
                                           self.page_key(day, page, per_page))
        current = int(generation or 0)
        if raw is None:
            return current, None
        value = raw.encode() if isinstance(raw, str) else raw
        tag, total, items = value.split(b":", 2)
        if int(tag) != current:  # read before the date last changed
            return current, None
        return current, CachedPage(int(total), items)

    def store(self, day: dt.date, page: int, per_page: int, generation: int,
              cached: CachedPage) -> None:
        """Cache a page read under `generation`, for the configured time."""
        value = b"%d:%d:%s" % (generation, cached.total, cached.items_json)
        self.client.set(self.page_key(day, page, per_page), value, ex=self.ttl_seconds)

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
