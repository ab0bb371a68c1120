"""Publishing encoded events: ids `<seq>-0`, no duplicates, optional trimming."""

from __future__ import annotations

import redis

from services.task_service.adapters.stream import publish_encoded


def test_publish_is_idempotent_and_keeps_seq_order(redis_client: redis.Redis,
                                                   namespace: str) -> None:
    stream = f"{namespace}:events"
    entries = [(seq, f'{{"seq": {seq}}}') for seq in range(1, 6)]
    assert publish_encoded(redis_client, stream, entries) == 5
    assert publish_encoded(redis_client, stream, entries[2:]) == 0
    ids = [entry_id.decode() for entry_id, _ in redis_client.xrange(stream)]
    assert ids == [f"{seq}-0" for seq in range(1, 6)]


def test_maxlen_trims_the_stream_but_never_its_head(redis_client: redis.Redis,
                                                    namespace: str) -> None:
    stream = f"{namespace}:events"
    entries = [(seq, "{}") for seq in range(1, 2001)]
    publish_encoded(redis_client, stream, entries, maxlen=100)
    assert 100 <= redis_client.xlen(stream) < 2000
    assert redis_client.xinfo_stream(stream)["last-generated-id"] == b"2000-0"
