"""Moving-window rate-limit storage on Redis that answers a request in one round trip.

Flask-Limiter asks its storage twice per request: once to take an entry from the window,
and once more, after the view, for the window's state that goes into the `X-RateLimit-*`
headers. This storage takes the entry and reads the window in one Lua script, and keeps
the window it saw for the rest of the request, so the second question costs nothing.
Everything else (keys, expiry, the window's meaning) is `limits`' own RedisStorage.

It is selected by prefixing the Redis URL's scheme with `taskstream+`; a `redis+cluster://`
URL selects the same on `limits`' Redis Cluster storage.
"""

from __future__ import annotations

import time

from flask import g, has_request_context
from limits.storage import RedisClusterStorage, RedisStorage

SCHEME_PREFIX = "taskstream+"

# KEYS[1] the window's list (newest entry first); ARGV: now, limit, expiry, amount.
# Takes `amount` entries if the window has room (as limits' acquire_moving_window.lua),
# then finds the oldest entry still inside the window by binary search over the list (as
# limits' moving_window.lua). Returns {acquired, oldest entry or now, entries in window}.
ACQUIRE_AND_REPORT = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local expiry = tonumber(ARGV[3])
local amount = tonumber(ARGV[4])
local start = now - expiry

local acquired = 0
if amount <= limit then
    local entry = redis.call('lindex', key, limit - amount)
    if not (entry and tonumber(entry) >= start) then
        local entries = {}
        for i = 1, amount do
            entries[i] = ARGV[1]
        end
        for i = 1, #entries, 5000 do
            redis.call('lpush', key, unpack(entries, i, math.min(i + 4999, #entries)))
        end
        redis.call('ltrim', key, 0, limit - 1)
        redis.call('expire', key, expiry)
        acquired = 1
    end
end

local low, high, found = 0, math.min(redis.call('llen', key), limit) - 1, nil
while low <= high do
    local mid = math.floor((low + high) / 2)
    local value = tonumber(redis.call('lindex', key, mid))
    if value and value >= start then
        found = mid
        low = mid + 1
    else
        high = mid - 1
    end
end
if found == nil then
    return {acquired, ARGV[1], 0}
end
return {acquired, redis.call('lindex', key, found), found + 1}
"""


class ReportsWindow(RedisStorage):
    """The moving-window acquire that also reports the window (on one server or a cluster:
    the script touches one key)."""

    def initialize_storage(self, uri: str) -> None:
        """Register limits' scripts and this storage's own."""
        super().initialize_storage(uri)
        script = ACQUIRE_AND_REPORT.encode()
        self.lua_acquire_and_report = self.get_connection().register_script(script)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Take `amount` entries if the window has room; remember the window for this request."""
        now = time.time()
        acquired, oldest, count = self.lua_acquire_and_report(
            [self.prefixed_key(key)], [now, limit, expiry, amount])
        if has_request_context():
            _windows()[(key, expiry)] = (float(oldest), int(count))
        return bool(acquired)

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """The window this request's acquire saw, or a fresh read of it from Redis."""
        if has_request_context():
            seen = _windows().pop((key, expiry), None)
            if seen is not None:
                return seen
        return super().get_moving_window(key, limit, expiry)


class WindowReportingRedisStorage(ReportsWindow):
    """`limits`' RedisStorage whose moving-window acquire also reports the window."""

    STORAGE_SCHEME = [f"{SCHEME_PREFIX}{scheme}" for scheme in ("redis", "rediss", "redis+unix")]

    def __init__(self, uri: str, **options: float | str | bool) -> None:
        super().__init__(uri.removeprefix(SCHEME_PREFIX), **options)  # type: ignore[arg-type]


class WindowReportingRedisClusterStorage(ReportsWindow, RedisClusterStorage):
    """`limits`' RedisClusterStorage whose moving-window acquire also reports the window."""

    STORAGE_SCHEME = [f"{SCHEME_PREFIX}redis+cluster"]

    def __init__(self, uri: str, **options: float | str | bool) -> None:
        RedisClusterStorage.__init__(
            self, uri.removeprefix(SCHEME_PREFIX), **options)  # type: ignore[arg-type]


def _windows() -> dict[tuple[str, int], tuple[float, int]]:
    """Windows seen by this request's acquires; `g` lives exactly as long as the request."""
    if "rate_limit_windows" not in g:
        g.rate_limit_windows = {}
    return g.rate_limit_windows  # type: ignore[no-any-return]


def storage_uri(redis_url: str) -> str:
    """The Flask-Limiter storage URI that selects this storage for `redis_url`."""
    return SCHEME_PREFIX + redis_url
