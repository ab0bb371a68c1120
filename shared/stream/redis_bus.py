"""`RedisStreamBus`: the event bus on a Redis stream with consumer groups.

Besides the `EventBus` protocol it holds what only the publisher and the operator tools use
on Redis: the stream's head with how many entries it ever took, deleting the stream, and a
plain read after a seq (`taskstream events tail`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from shared.redis_client import is_cluster
from shared.stream.entries import (
    PAYLOAD_FIELD,
    Delivery,
    Encoded,
    GroupInfo,
    dead_letter_fields,
    entry_id_of,
    seq_of,
)
from shared.stream.publishing import publish_encoded
from shared.stream.trim import TRIM_SCRIPT

BACKFILL_TTL_SECONDS = 600


@dataclass(frozen=True)
class StreamHead:
    """The stream's last id, and how many entries it ever took and holds now."""

    seq: int
    added: int | None  # `entries-added`, which Redis reports from 7.0 on
    length: int


class RedisStreamBus:
    """EventBus on a Redis stream."""

    def __init__(self, client: redis.Redis, stream: str) -> None:
        self.client = client
        self.stream = stream
        self.dead_stream = f"{stream}:dead"
        self.backfill_key = f"{stream}:backfill"  # sorted set: payload scored by seq
        self.backfill_requests_key = f"{stream}:backfill:requests"  # set of "first-last"
        self._unparsed = _unparsed_reads(client)
        self._trim = client.register_script(TRIM_SCRIPT)

    def publish_encoded(self, entries: Sequence[Encoded]) -> int:
        """XADD the entries in one pipelined round trip."""
        return publish_encoded(self.client, self.stream, entries)

    def trim(self, keep: int) -> int:
        """XTRIM MINID below what every group still needs (one script, atomic)."""
        return int(self._trim(keys=[self.stream], args=[keep]))

    def read_head(self) -> StreamHead | None:
        """XINFO STREAM: the last generated id (which survives trimming); None if no stream."""
        try:
            info = self.client.xinfo_stream(self.stream)
        except redis.ResponseError:
            return None
        added = info.get("entries-added")
        return StreamHead(seq_of(info["last-generated-id"]),
                          None if added is None else int(added), int(info["length"]))

    def head(self) -> int:
        """The seq of the stream's last generated id (0 when there is no stream)."""
        found = self.read_head()
        return found.seq if found else 0

    def last_entry(self) -> Delivery | None:
        """XREVRANGE of one: the stream's last entry (None when it holds none)."""
        entries = self.client.xrevrange(self.stream, count=1)
        found = self._entries(entries)
        return found[0] if found else None

    def drop(self) -> None:
        """Delete the stream, and with it its consumer groups."""
        self.client.delete(self.stream)

    def read_after(self, seq: int, count: int, block_ms: int) -> list[Delivery]:
        """XREAD (no group) of up to `count` entries after `seq`, blocking up to `block_ms`."""
        reply: Any = self.client.xread({self.stream: entry_id_of(seq)}, count=count,
                                       block=block_ms)
        return self._entries(reply[0][1]) if reply else []

    def ensure_group(self, group: str) -> None:
        """Create the group at id 0, creating the stream too if needed."""
        try:
            self.client.xgroup_create(self.stream, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read_new(self, group: str, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        """XREADGROUP with `>`."""
        return self._read_group(group, consumer, count, ">", block_ms)

    def read_pending(self, group: str, consumer: str, count: int) -> list[Delivery]:
        """XREADGROUP from id 0 (this consumer's history), with delivery counts."""
        return self._with_counts(group, consumer, self._read_group(group, consumer, count, "0"))

    def claim_stale(
        self, group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[Delivery]:
        """XAUTOCLAIM, following its cursor until it wraps or `count` entries are claimed."""
        claimed: list[Delivery] = []
        cursor = "0-0"
        while len(claimed) < count:
            reply = self.client.xautoclaim(
                self.stream, group, consumer, min_idle_ms, start_id=cursor,
                count=count - len(claimed),
            )
            cursor, entries = _text(reply[0]), reply[1]
            claimed.extend(self._entries(entries))
            if cursor == "0-0":
                break
        return self._with_counts(group, consumer, claimed)

    def ack(self, group: str, entry_ids: Iterable[str]) -> int:
        """XACK."""
        ids = list(entry_ids)
        return int(self.client.xack(self.stream, group, *ids)) if ids else 0

    def range(self, first_seq: int, last_seq: int, count: int) -> list[Delivery]:
        """XRANGE between two seqs."""
        entries = self.client.xrange(
            self.stream, min=entry_id_of(first_seq), max=entry_id_of(last_seq), count=count
        )
        return self._entries(entries)

    def dead_letter(self, group: str, delivery: Delivery, error: str) -> None:
        """XADD to `<stream>:dead` and XACK, in one MULTI."""
        fields: dict[Any, Any] = dead_letter_fields(group, delivery, error)
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(self.dead_stream, fields)
        pipe.xack(self.stream, group, delivery.entry_id)
        pipe.execute()

    def dead_letter_count(self) -> int:
        """XLEN of the dead-letter stream."""
        return int(self.client.xlen(self.dead_stream))

    def backfill(self, first_seq: int, last_seq: int, count: int) -> list[Delivery]:
        """ZRANGE BYSCORE of the put-back events; SADD a request for what is not there."""
        rows: list[Any] = self.client.zrange(  # type: ignore[assignment]
            self.backfill_key, first_seq, last_seq, byscore=True, offset=0, num=count,
            withscores=True)
        found = [Delivery(entry_id_of(int(seq)), _text(payload), backfilled=True)
                 for payload, seq in rows]
        wanted = min(last_seq, first_seq + count - 1)
        if [d.seq for d in found] != list(range(first_seq, wanted + 1)):
            self.client.sadd(self.backfill_requests_key, f"{first_seq}-{wanted}")
        return found

    def release_backfill(self, through_seq: int) -> None:
        """ZREMRANGEBYSCORE up to the seq."""
        self.client.zremrangebyscore(self.backfill_key, "-inf", through_seq)

    def backfill_requests(self, limit: int) -> list[tuple[int, int]]:
        """SPOP requested ranges."""
        taken: Any = self.client.spop(self.backfill_requests_key, limit)
        return sorted(_range_of(request) for request in taken or [])

    def offer_backfill(self, entries: Sequence[Encoded],
                       ttl_seconds: int = BACKFILL_TTL_SECONDS) -> None:
        """ZADD the events; the set expires unless a consumer keeps asking."""
        if entries:
            pipe = self.client.pipeline(transaction=False)
            pipe.zadd(self.backfill_key, {payload: seq for seq, payload in entries})
            pipe.expire(self.backfill_key, ttl_seconds)
            pipe.execute()

    def group_info(self, group: str) -> GroupInfo | None:
        """XINFO GROUPS, for one group."""
        try:
            groups = self.client.xinfo_groups(self.stream)
        except redis.ResponseError:
            return None
        for info in groups:
            if _text(info["name"]) == group:
                return GroupInfo(
                    pending=int(info["pending"]), consumers=int(info["consumers"]),
                    last_delivered_seq=seq_of(info["last-delivered-id"]),
                )
        return None

    def _with_counts(
        self, group: str, consumer: str, deliveries: list[Delivery]
    ) -> list[Delivery]:
        """Attach delivery counts from the consumer's own pending list (the entries are in it)."""
        if not deliveries:
            return deliveries
        rows = self.client.xpending_range(
            self.stream, group, min=deliveries[0].entry_id, max=deliveries[-1].entry_id,
            count=len(deliveries) * 2, consumername=consumer,
        )
        counts = {_text(row["message_id"]): int(row["times_delivered"]) for row in rows}
        return [
            Delivery(d.entry_id, d.payload, counts.get(d.entry_id, d.deliveries))
            for d in deliveries
        ]

    def _read_group(self, group: str, consumer: str, count: int, start: str,
                    block_ms: int = 0) -> list[Delivery]:
        """XREADGROUP from `start`; entries deleted by trimming while pending are left out."""
        command: list[Any] = ["XREADGROUP", "GROUP", group, consumer, "COUNT", count]
        if block_ms:
            command += ["BLOCK", block_ms]
        reply = self._unparsed.execute_command(*command, "STREAMS", self.stream, start)
        streams = reply.items() if isinstance(reply, dict) else reply or []  # RESP3 or RESP2
        return [
            Delivery(_text(entry_id), _text(_payload_of(fields)))
            for _stream, entries in streams for entry_id, fields in entries
            if fields is not None
        ]

    @staticmethod
    def _entries(entries: Any) -> list[Delivery]:
        found = []
        for entry_id, fields in entries:
            if fields is None:  # deleted by trimming while pending
                continue
            payload = fields.get(PAYLOAD_FIELD.encode(), fields.get(PAYLOAD_FIELD, b""))
            found.append(Delivery(_text(entry_id), _text(payload)))
        return found


def _unparsed_reads(client: redis.Redis) -> redis.Redis:
    """A client whose XREADGROUP replies are left as Redis sends them.

    The consumer's hot path: redis-py's reply callback would turn every entry's fields into
    a dict first, which cost more than the read itself. Same connection pool; only this
    client's XREADGROUP is left as is. A cluster client parses on each node's own client, so
    there the replies stay parsed (`_payload_of` reads both).
    """
    if is_cluster(client):
        return client
    unparsed = redis.Redis(connection_pool=client.connection_pool)
    unparsed.set_response_callback("XREADGROUP", _as_sent)
    return unparsed


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _range_of(request: str | bytes) -> tuple[int, int]:
    first, last = _text(request).split("-", 1)
    return int(first), int(last)


def _as_sent(response: Any, **_options: Any) -> Any:
    return response


def _payload_of(fields: list[Any] | dict[Any, Any]) -> Any:
    """The payload field of an entry's flat `[name, value, ...]` list (publish writes it first),
    or of its parsed fields."""
    if isinstance(fields, dict):
        return fields.get(PAYLOAD_FIELD.encode(), fields.get(PAYLOAD_FIELD, b""))
    if _text(fields[0]) == PAYLOAD_FIELD:
        return fields[1]
    named = dict(zip(map(_text, fields[::2]), fields[1::2], strict=True))
    return named.get(PAYLOAD_FIELD, b"")
