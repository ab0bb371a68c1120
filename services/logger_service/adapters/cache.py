"""The Redis cache of date pages, tagged with each date's durable version.

Every transaction that changes a TaskLogger date's rows gives the date a new, higher version
in the projection database (`date_versions`, numbered by a sequence, committed with the
change). The projector copies it to Redis (`<prefix>:version:{<D>}`). A page is cached under
its date, page and size, tagged with the version it was read under; a reader fetches the
date's version and the page in one MGET and uses the page only when the two agree:

- Before the projector commits a change it marks the version key "changing" (the new number,
  negated, expiring after a minute): readers then read the database and cache nothing. After
  the commit it sets the new number. If that fails the mark stays, so no old page is served,
  and the projector publishes the number again until Redis has it.
- A missing version key (evicted, or never set) never matches a page: the reader takes the
  date's version from the database, sets it only if the key is still missing, and caches the
  page it reads after that under it.
- A version only grows (a Lua script refuses to lower one), so a page tagged with an older
  number can never match again.
- A version key lives a day (`VERSION_TTL_SECONDS`) past its last publish: a date nobody
  changes or reads leaves no key behind, and one read again is seeded as if evicted.

Pages are kept as the JSON the API answers with, so a hit is passed on without being decoded.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping

import redis
from sqlalchemy.exc import SQLAlchemyError

from services.logger_service.service_layer.queries import CachedPage

log = logging.getLogger("taskstream.logger.cache")

Versions = Mapping[dt.date, int]

# KEYS[1] a version key, ARGV[1] the version (negative: "being changed"), ARGV[2] its TTL.
# Sets it unless the key holds a larger number, or the same one already final.
SET_VERSION = """
local current = redis.call('GET', KEYS[1])
local new = tonumber(ARGV[1])
if current then
  local held = math.abs(tonumber(current))
  if math.abs(new) < held or (math.abs(new) == held and new < 0) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""
CHANGING_TTL_SECONDS = 60
VERSION_TTL_SECONDS = 86_400


class DatePageCache:
    """Cached `GET /tasks?date=` pages under `<namespace>:logger:dates:...`.

    `version_of(day)` reads a date's version from the database, for a missing version key
    (without it, such a date is not cached until the projector publishes its version).
    """

    def __init__(self, client: redis.Redis, namespace: str, ttl_seconds: int = 300,
                 version_of: Callable[[dt.date], int] | None = None) -> None:
        self.client = client
        self.prefix = f"{namespace}:logger:dates"
        self.ttl_seconds = ttl_seconds
        self.version_of = version_of

    # A date's keys share the hash tag `{<date>}`: on a Redis Cluster the MGET of a version
    # and a page reaches one node.
    def version_key(self, day: dt.date) -> str:
        """The key of a date's version."""
        return f"{self.prefix}:version:{{{day.isoformat()}}}"

    def page_key(self, day: dt.date, page: int, per_page: int) -> str:
        """The key of one cached page of a date."""
        return f"{self.prefix}:page:{{{day.isoformat()}}}:{page}:{per_page}"

    def lookup(self, day: dt.date, page: int, per_page: int
               ) -> tuple[int | None, CachedPage | None]:
        """The version to cache the page under (None: cache nothing now), and the page
        cached under it, if any."""
        version, raw = self.client.mget(self.version_key(day),
                                        self.page_key(day, page, per_page))
        if version is None:
            return self._reseed(day), None
        current = int(version)
        if current < 0 or raw is None:  # being changed: read the database, cache nothing
            return (None if current < 0 else current), None
        value = raw.encode() if isinstance(raw, str) else raw
        tag, total, items = value.split(b":", 2)
        if int(tag) != current:  # read before the date last changed
            return current, None
        return current, CachedPage(int(total), items)

    def _reseed(self, day: dt.date) -> int | None:
        """Set a missing version from the database; None if someone set it meanwhile."""
        if self.version_of is None:
            return None
        known = self.version_of(day)
        seeded = self.client.set(self.version_key(day), known, nx=True, ex=VERSION_TTL_SECONDS)
        return known if seeded else None

    def store(self, day: dt.date, page: int, per_page: int, version: int,
              cached: CachedPage) -> None:
        """Cache a page read under `version`, for the configured time."""
        value = b"%d:%d:%s" % (version, cached.total, cached.items_json)
        self.client.set(self.page_key(day, page, per_page), value, ex=self.ttl_seconds)

    def publish(self, versions: Versions, *, changing: bool = False) -> None:
        """Set the dates' versions (never lowering one); `changing` marks them being changed."""
        if not versions:
            return
        pipe = self.client.pipeline(transaction=False)
        ttl = CHANGING_TTL_SECONDS if changing else VERSION_TTL_SECONDS
        for day, version in versions.items():
            # EVAL, not EVALSHA: a Redis Cluster pipeline refuses EVALSHA (Redis keeps the
            # compiled script either way), and spelled out: its eval() is something else.
            pipe.execute_command("EVAL", SET_VERSION, 1, self.version_key(day),
                                 -version if changing else version, ttl)
        pipe.execute()


def publish_quietly(cache: DatePageCache, versions: Versions) -> bool:
    """Publish committed versions; log (not raise) a Redis failure. True if published."""
    try:
        cache.publish(versions)
    except redis.RedisError as exc:  # the projector publishes them again (VersionPublisher)
        log.error("could not publish the versions of %s: %s",
                  [day.isoformat() for day in versions], exc)
        return False
    return True


class VersionPublisher:
    """The projector's side of the cache (a `DateCache` and a consumer observer).

    It marks dates being changed before a commit and publishes their versions after it; on
    its tick (at most every `interval` s) it publishes every version the database has above
    the last one it saw published, which repairs a failed publish, a crash between commit and
    publish (the first tick after a start publishes them all), and a rebuild's new versions.
    """

    def __init__(self, cache: DatePageCache, versions_after: Callable[[int], Versions],
                 interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.cache = cache
        self.versions_after = versions_after
        self.interval = interval
        self.clock = clock
        self.confirmed = 0  # every version up to this one is known to be in Redis
        self.next_check = 0.0

    def changing(self, versions: Versions) -> None:
        """Before the commit: mark the dates being changed (raises if Redis is out of reach)."""
        self.cache.publish(versions, changing=True)

    def changed(self, versions: Versions) -> None:
        """After the commit: publish the versions; a failure is repaired on the next tick."""
        if not publish_quietly(self.cache, versions):
            self.next_check = 0.0

    def tick(self) -> None:
        """Publish what the database has above the last version seen published (never raises)."""
        if self.clock() < self.next_check:
            return
        self.next_check = self.clock() + self.interval
        try:
            missed = self.versions_after(self.confirmed)
            self.cache.publish(missed)
        except (redis.RedisError, SQLAlchemyError) as exc:
            log.warning("could not check the cached dates' versions: %s", exc)
            return
        self.confirmed = max(missed.values(), default=self.confirmed)

    def committed(self, applied: int, seconds: float) -> None:
        """Nothing to do: `changed` already published."""

    def dead_lettered(self, seq: int) -> None:
        """Nothing to do."""
