"""The relay's status in Redis: a hash of `store_head`, `stream_head`, `lag`, `updated_at`,
and `stopped_at` once a relay stopped cleanly (until it runs again)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import redis

RUNNING_WITHIN = 30.0  # seconds: a relay that reported this recently may still be running


def status_key(namespace: str) -> str:
    """The Redis hash where the relay keeps its status."""
    return f"{namespace}:relay:status"


def read_status(client: redis.Redis, namespace: str) -> dict[str, Any]:
    """The relay's last reported status (empty if it never ran)."""
    raw = client.hgetall(status_key(namespace))
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes)
                                                           else v) for k, v in raw.items()}


def write_status(client: redis.Redis, namespace: str, store_head: int, stream_head: int,
                 lag: int) -> None:
    """Record where the store and the stream stand, and when."""
    pipe = client.pipeline(transaction=False)
    pipe.hset(status_key(namespace), mapping={
        "store_head": store_head, "stream_head": stream_head, "lag": lag,
        "updated_at": _now()})
    pipe.hdel(status_key(namespace), "stopped_at")
    pipe.execute()


def write_stopped(client: redis.Redis, namespace: str) -> None:
    """Record that the relay stopped cleanly."""
    client.hset(status_key(namespace), "stopped_at", _now())


def may_be_running(status: dict[str, Any], now: datetime | None = None) -> bool:
    """True when a relay reported within `RUNNING_WITHIN` seconds and did not stop since."""
    if "stopped_at" in status or "updated_at" not in status:
        return False
    updated = datetime.fromisoformat(status["updated_at"].replace("Z", "+00:00"))
    return (now or datetime.now(UTC)) - updated < timedelta(seconds=RUNNING_WITHIN)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
