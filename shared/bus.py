"""The event bus: a Redis stream with consumer groups, and an in-memory fake of it.

Entry ids are `<seq>-0`, so publishing the same event twice is refused by Redis itself and a
republish can never reorder the stream. Trimming keeps every entry a consumer group has not
acknowledged. A consumer that meets a gap anyway (its group made after a trim, Redis lost a
part of the stream) asks the publisher, which reads the event store, to put the missing events
back beside the stream: the "backfill". Both implementations pass tests/contract/test_bus.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

from shared.events import EventEnvelope, encode

PAYLOAD_FIELD = "event"
BACKFILL_TTL_SECONDS = 600

# Trim below the oldest entry any group still needs (its oldest pending entry, else the one
# after its last delivered), keeping at least ARGV[1] entries. One script, so no group can
# read new entries between the look at its progress and the trim (Redis 7.0 has no
# `XTRIM ... ACKED`). Returns how many entries were removed.
TRIM_SCRIPT = """
local function seq(id) return tonumber(string.match(id, '^(%d+)')) end
local function field(flat, name)
  for i = 1, #flat, 2 do if flat[i] == name then return flat[i + 1] end end
end
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok then return 0 end
local head = seq(field(redis.call('XINFO', 'STREAM', KEYS[1]), 'last-generated-id'))
local floor = head - tonumber(ARGV[1]) + 1
for _, group in ipairs(groups) do
  local needed = seq(field(group, 'last-delivered-id')) + 1
  local pending = redis.call('XPENDING', KEYS[1], field(group, 'name'))
  if pending[1] > 0 then needed = seq(pending[2]) end
  if needed < floor then floor = needed end
end
if floor <= 1 then return 0 end
return redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-0', floor))
"""


@dataclass(slots=True)
class Delivery:
    """One stream entry handed to a consumer (treated as immutable).

    Not a frozen dataclass: a consumer builds thousands of these per batch, and a frozen
    dataclass's constructor costs three times as much.
    """

    entry_id: str
    payload: str
    deliveries: int = 1
    #: True for an event put back from the event store (not an entry of the stream).
    backfilled: bool = False
    #: The event's global sequence number, taken from the entry id.
    seq: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.seq = seq_of(self.entry_id)


@dataclass(frozen=True)
class GroupInfo:
    """What a consumer group looks like right now."""

    pending: int
    consumers: int
    last_delivered_seq: int


def seq_of(entry_id: str | bytes) -> int:
    """Return the sequence number encoded in a `<seq>-0` entry id."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


class EventBus(Protocol):
    """What producers and consumers need from the stream."""

    def publish(self, events: Sequence[EventEnvelope]) -> int:
        """Append events with ids `<seq>-0`; entries already there are skipped. Returns added."""

    def trim(self, keep: int) -> int:
        """Remove entries every group has acknowledged, keeping the last `keep` at least."""

    def head(self) -> int:
        """Return the seq of the last entry ever added (0 when the stream is empty or gone)."""

    def ensure_group(self, group: str) -> None:
        """Create the consumer group (reading from the start) if it does not exist."""

    def read_new(self, group: str, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        """Read entries never delivered to the group."""

    def read_pending(self, group: str, consumer: str, count: int) -> list[Delivery]:
        """Re-read entries delivered to this consumer and not yet acknowledged."""

    def claim_stale(
        self, group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[Delivery]:
        """Take over entries other consumers left pending longer than `min_idle_ms`."""

    def ack(self, group: str, entry_ids: Iterable[str]) -> int:
        """Acknowledge entries; returns how many were pending."""

    def range(self, first_seq: int, last_seq: int, count: int) -> list[Delivery]:
        """Return entries with `first_seq <= seq <= last_seq`, oldest first."""

    def dead_letter(self, group: str, delivery: Delivery, error: str) -> None:
        """Move an entry to the dead-letter stream with its error and acknowledge it."""

    def dead_letter_count(self) -> int:
        """Return how many entries the dead-letter stream holds."""

    def backfill(self, first_seq: int, last_seq: int, count: int) -> list[Delivery]:
        """Events put back from the store in `first_seq..last_seq` (at most `count`, oldest
        first); when they do not all cover the range yet, it is requested from the publisher."""

    def release_backfill(self, through_seq: int) -> None:
        """Forget put-back events up to `through_seq` (they are applied)."""

    def backfill_requests(self, limit: int) -> list[tuple[int, int]]:
        """Take up to `limit` requested `(first_seq, last_seq)` ranges (the publisher's side)."""

    def offer_backfill(self, entries: Sequence[tuple[int, str]]) -> None:
        """Put stored `(seq, payload)` events back for consumers (the publisher's side)."""

    def group_info(self, group: str) -> GroupInfo | None:
        """Return the group's pending count, consumers and last delivered seq."""


class RedisStreamBus:
    """EventBus on a Redis stream."""

    def __init__(self, client: redis.Redis, stream: str) -> None:
        self.client = client
        self.stream = stream
        self.dead_stream = f"{stream}:dead"
        self.backfill_key = f"{stream}:backfill"  # sorted set: payload scored by seq
        self.backfill_requests_key = f"{stream}:backfill:requests"  # set of "first-last"
        # The consumer's hot path reads entries as Redis sends them: redis-py's reply
        # callback would turn every entry's fields into a dict first, which cost more than
        # the read itself. Same connection pool; only this client's XREADGROUP is left as is.
        self._unparsed = redis.Redis(connection_pool=client.connection_pool)
        self._unparsed.set_response_callback("XREADGROUP", _as_sent)
        self._trim = client.register_script(TRIM_SCRIPT)

    def publish(self, events: Sequence[EventEnvelope]) -> int:
        """Append events in one pipelined round trip."""
        if not events:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(self.stream, {PAYLOAD_FIELD: encode(event)}, id=event.entry_id)
        added = 0
        for result in pipe.execute(raise_on_error=False):
            if isinstance(result, redis.ResponseError):
                if "equal or smaller" not in str(result):
                    raise result
            elif isinstance(result, Exception):
                raise result
            else:
                added += 1
        return added

    def trim(self, keep: int) -> int:
        """XTRIM MINID below what every group still needs (one script, atomic)."""
        return int(self._trim(keys=[self.stream], args=[keep]))

    def head(self) -> int:
        """Read the stream's last generated id, which survives trimming."""
        try:
            info = self.client.xinfo_stream(self.stream)
        except redis.ResponseError:
            return 0
        return seq_of(info["last-generated-id"])

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
            self.stream, min=f"{first_seq}-0", max=f"{last_seq}-0", count=count
        )
        return self._entries(entries)

    def dead_letter(self, group: str, delivery: Delivery, error: str) -> None:
        """XADD to `<stream>:dead` and XACK, in one MULTI."""
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(self.dead_stream, {
            "entry_id": delivery.entry_id, "group": group, PAYLOAD_FIELD: delivery.payload,
            "error": error[:2000], "deliveries": str(delivery.deliveries),
        })
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
        found = [Delivery(f"{int(seq)}-0", _text(payload), backfilled=True)
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

    def offer_backfill(self, entries: Sequence[tuple[int, str]],
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


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _range_of(request: str | bytes) -> tuple[int, int]:
    first, last = _text(request).split("-", 1)
    return int(first), int(last)


def _as_sent(response: Any, **_options: Any) -> Any:
    return response


def _payload_of(fields: list[Any]) -> Any:
    """The payload field of an entry's flat `[name, value, ...]` list (publish writes it first)."""
    if _text(fields[0]) == PAYLOAD_FIELD:
        return fields[1]
    named = dict(zip(map(_text, fields[::2]), fields[1::2], strict=True))
    return named.get(PAYLOAD_FIELD, b"")


@dataclass
class _Pending:
    consumer: str
    deliveries: int
    delivered_at: float


@dataclass
class _Group:
    last_delivered: int = 0
    pending: dict[str, _Pending] = field(default_factory=dict)
    consumers: set[str] = field(default_factory=set)


class InMemoryBus:
    """EventBus kept in process memory, with the same semantics as RedisStreamBus."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.entries: dict[int, str] = {}
        self.last_seq = 0
        self.groups: dict[str, _Group] = {}
        self.dead: list[dict[str, str]] = []
        self.put_back: dict[int, str] = {}
        self.requested: set[tuple[int, int]] = set()
        self.clock = clock

    def publish(self, events: Sequence[EventEnvelope]) -> int:
        """Append events whose seq is above the head."""
        added = 0
        for event in events:
            if event.seq > self.last_seq:
                self.entries[event.seq] = encode(event)
                self.last_seq = event.seq
                added += 1
        return added

    def trim(self, keep: int) -> int:
        """Drop entries below what every group still needs, keeping the last `keep`."""
        floor = self.last_seq - keep + 1
        for state in self.groups.values():
            needed = min((seq_of(i) for i in state.pending), default=state.last_delivered + 1)
            floor = min(floor, needed)
        trimmed = [seq for seq in self.entries if seq < floor]
        for seq in trimmed:
            del self.entries[seq]
        return len(trimmed)

    def head(self) -> int:
        """Return the last seq ever added."""
        return self.last_seq

    def ensure_group(self, group: str) -> None:
        """Create the group at the start of the stream."""
        self.groups.setdefault(group, _Group())

    def read_new(self, group: str, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        """Deliver entries after the group's last delivered one."""
        state = self._group(group, consumer)
        seqs = [s for s in sorted(self.entries) if s > state.last_delivered][:count]
        for seq in seqs:
            state.pending[f"{seq}-0"] = _Pending(consumer, 1, self.clock())
            state.last_delivered = seq
        return [Delivery(f"{s}-0", self.entries[s]) for s in seqs]

    def read_pending(self, group: str, consumer: str, count: int) -> list[Delivery]:
        """Re-deliver this consumer's unacknowledged entries."""
        state = self._group(group, consumer)
        mine = [i for i, p in sorted(state.pending.items(), key=_by_seq) if p.consumer == consumer]
        return _present([self._redeliver(state, i, consumer) for i in mine[:count]])

    def claim_stale(
        self, group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[Delivery]:
        """Take over entries idle for at least `min_idle_ms`."""
        state = self._group(group, consumer)
        now = self.clock()
        stale = [
            i for i, p in sorted(state.pending.items(), key=_by_seq)
            if (now - p.delivered_at) * 1000 >= min_idle_ms
        ]
        return _present([self._redeliver(state, i, consumer) for i in stale[:count]])

    def ack(self, group: str, entry_ids: Iterable[str]) -> int:
        """Drop entries from the pending list."""
        state = self.groups.get(group)
        if state is None:
            return 0
        return sum(1 for i in entry_ids if state.pending.pop(i, None) is not None)

    def range(self, first_seq: int, last_seq: int, count: int) -> list[Delivery]:
        """Return stored entries between two seqs."""
        seqs = [s for s in sorted(self.entries) if first_seq <= s <= last_seq][:count]
        return [Delivery(f"{s}-0", self.entries[s]) for s in seqs]

    def dead_letter(self, group: str, delivery: Delivery, error: str) -> None:
        """Record the entry as dead and acknowledge it."""
        self.dead.append({
            "entry_id": delivery.entry_id, "group": group, PAYLOAD_FIELD: delivery.payload,
            "error": error[:2000], "deliveries": str(delivery.deliveries),
        })
        self.ack(group, [delivery.entry_id])

    def dead_letter_count(self) -> int:
        """Return the number of dead letters."""
        return len(self.dead)

    def backfill(self, first_seq: int, last_seq: int, count: int) -> list[Delivery]:
        """Put-back events in the range; request the range when they do not cover it."""
        seqs = sorted(s for s in self.put_back if first_seq <= s <= last_seq)[:count]
        wanted = min(last_seq, first_seq + count - 1)
        if seqs != list(range(first_seq, wanted + 1)):
            self.requested.add((first_seq, wanted))
        return [Delivery(f"{s}-0", self.put_back[s], backfilled=True) for s in seqs]

    def release_backfill(self, through_seq: int) -> None:
        """Forget put-back events up to the seq."""
        for seq in [s for s in self.put_back if s <= through_seq]:
            del self.put_back[seq]

    def backfill_requests(self, limit: int) -> list[tuple[int, int]]:
        """Take requested ranges."""
        taken = sorted(self.requested)[:limit]
        self.requested.difference_update(taken)
        return taken

    def offer_backfill(self, entries: Sequence[tuple[int, str]]) -> None:
        """Put events back."""
        self.put_back.update(dict(entries))

    def group_info(self, group: str) -> GroupInfo | None:
        """Return the group's state."""
        state = self.groups.get(group)
        if state is None:
            return None
        return GroupInfo(len(state.pending), len(state.consumers), state.last_delivered)

    def _group(self, group: str, consumer: str) -> _Group:
        state = self.groups.get(group)
        if state is None:
            raise redis.ResponseError(f"NOGROUP No such consumer group '{group}'")
        state.consumers.add(consumer)
        return state

    def _redeliver(self, state: _Group, entry_id: str, consumer: str) -> Delivery:
        pending = state.pending[entry_id]
        pending.consumer, pending.delivered_at = consumer, self.clock()
        pending.deliveries += 1
        payload = self.entries.get(seq_of(entry_id), "")
        return Delivery(entry_id, payload, pending.deliveries)


def _present(deliveries: list[Delivery]) -> list[Delivery]:
    """Drop entries trimmed while pending, as Redis does (it returns them without fields)."""
    return [d for d in deliveries if d.payload]


def _by_seq(item: tuple[str, _Pending]) -> int:
    return seq_of(item[0])
