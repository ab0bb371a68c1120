"""Publishing encoded events: ids `<seq>-0`, no duplicates."""

from __future__ import annotations

import redis

from shared.stream.publishing import publish_encoded


def test_publish_is_idempotent_and_keeps_seq_order(redis_client: redis.Redis,
                                                   namespace: str) -> None:
    stream = f"{namespace}:events"
    entries = [(seq, f'{{"seq": {seq}}}') for seq in range(1, 6)]
    assert publish_encoded(redis_client, stream, entries) == 5
    assert publish_encoded(redis_client, stream, entries[2:]) == 0
    ids = [entry_id.decode() for entry_id, _ in redis_client.xrange(stream)]
    assert ids == [f"{seq}-0" for seq in range(1, 6)]
