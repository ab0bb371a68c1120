"""The relay's status in Redis: a hash of `store_head`, `stream_head`, `lag`, `updated_at`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis


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
    client.hset(status_key(namespace), mapping={
        "store_head": store_head, "stream_head": stream_head, "lag": lag,
        "updated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    })
