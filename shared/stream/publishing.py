"""Publishing to Redis streams: pipelined XADDs with the ids `<seq>-0` (and the relay's
marks), where an id at or below a stream's head is refused by Redis and skipped, so a
republish neither duplicates nor reorders anything."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import redis

from shared.redis_client import pipelined
from shared.stream.entries import PAYLOAD_FIELD, Encoded, entry_id_of


def publish_encoded(client: redis.Redis, stream: str, entries: Sequence[Encoded]) -> int:
    """XADD `(seq, payload)` entries in one pipelined round trip; return how many were added.

    An id at or below the stream's head is refused by Redis and skipped here, so a republish
    neither duplicates nor reorders anything.
    """
    return publish_to_streams(client, [(stream, seq, payload) for seq, payload in entries])


def publish_to_streams(client: redis.Redis, entries: Sequence[tuple[str, int, str]],
                       marks: Mapping[str, str] | None = None) -> int:
    """XADD `(stream, seq, payload)` entries, then SET `marks` (key: value), in one pipelined
    round trip (one per node on a cluster, `shared.redis_client.pipelined`); return how many
    entries were added. Each mark is sent after the entries of its stream, on the same
    connection (same slot)."""
    if not entries and not marks:
        return 0
    # XADD spelled out: redis-py's xadd() rebuilds the same argument list per call, which is
    # a measurable share of the relay's time on a large backlog.
    commands: list[tuple[str, ...]] = [
        ("XADD", stream, entry_id_of(seq), PAYLOAD_FIELD, payload)
        for stream, seq, payload in entries]
    commands += [("SET", key, value) for key, value in (marks or {}).items()]
    replies = pipelined(client, commands)
    added = sum(_added(reply) for reply in replies[:len(entries)])
    if failed := [reply for reply in replies[len(entries):] if isinstance(reply, Exception)]:
        raise failed[0]
    return added


def _added(reply: Any) -> bool:
    """True for an XADD that added its entry; False for an id already there; raise else."""
    if isinstance(reply, redis.ResponseError) and "equal or smaller" in str(reply):
        return False
    if isinstance(reply, Exception):
        raise reply
    return True
