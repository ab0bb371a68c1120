"""Publishing already-encoded events to the Redis stream, with ids `<seq>-0`."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from shared.bus import PAYLOAD_FIELD


def publish_encoded(client: redis.Redis, stream: str, entries: Sequence[tuple[int, str]]
                    ) -> int:
    """XADD `(seq, payload)` entries in one pipelined round trip; return how many were added.

    The same contract as `RedisStreamBus.publish`, for payloads the event store encoded
    itself: an id at or below the stream's head is refused by Redis and skipped here, so a
    republish neither duplicates nor reorders anything.
    """
    if not entries:
        return 0
    pipe = client.pipeline(transaction=False)
    # XADD spelled out: redis-py's xadd() rebuilds the same argument list per call, which is
    # a measurable share of the relay's time on a large backlog.
    for seq, payload in entries:
        pipe.execute_command("XADD", stream, f"{seq}-0", PAYLOAD_FIELD, payload)
    added = 0
    for reply in pipe.execute(raise_on_error=False):
        if isinstance(reply, redis.ResponseError) and "equal or smaller" in str(reply):
            continue
        if isinstance(reply, Exception):
            raise reply
        added += 1
    return added
