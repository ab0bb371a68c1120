"""The event bus for tests: an in-memory fake, and both buses able to publish envelopes.

In production only the relay publishes, and it publishes what the event store encoded
(`publish_encoded`); tests build envelopes and publish those. tests/contract/test_bus.py holds
`InMemoryBus` and `RedisStreamBus` to the same behaviour.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import redis

from shared.events import EventEnvelope, encode
from shared.stream.entries import (
    Delivery,
    Encoded,
    GroupInfo,
    dead_letter_fields,
    entry_id_of,
    seq_of,
)
from shared.stream.redis_bus import RedisStreamBus


def encoded(events: Sequence[EventEnvelope]) -> list[Encoded]:
    """The events as the relay publishes them: `(seq, envelope JSON)`."""
    return [(event.seq, encode(event)) for event in events]


class PublishingRedisBus(RedisStreamBus):
    """RedisStreamBus that also publishes envelopes."""

    def publish(self, events: Sequence[EventEnvelope]) -> int:
        """Append events with ids `<seq>-0`; entries already there are skipped."""
        return self.publish_encoded(encoded(events))


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
        return self.publish_encoded(encoded(events))

    def publish_encoded(self, entries: Sequence[Encoded]) -> int:
        """Append entries whose seq is above the head."""
        added = 0
        for seq, payload in entries:
            if seq > self.last_seq:
                self.entries[seq] = payload
                self.last_seq = seq
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
            state.pending[entry_id_of(seq)] = _Pending(consumer, 1, self.clock())
            state.last_delivered = seq
        return [Delivery(entry_id_of(s), self.entries[s]) for s in seqs]

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
        return [Delivery(entry_id_of(s), self.entries[s]) for s in seqs]

    def dead_letter(self, group: str, delivery: Delivery, error: str) -> None:
        """Record the entry as dead and acknowledge it."""
        self.dead.append(dead_letter_fields(group, delivery, error))
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
        return [Delivery(entry_id_of(s), self.put_back[s], backfilled=True) for s in seqs]

    def release_backfill(self, through_seq: int) -> None:
        """Forget put-back events up to the seq."""
        for seq in [s for s in self.put_back if s <= through_seq]:
            del self.put_back[seq]

    def backfill_requests(self, limit: int) -> list[tuple[int, int]]:
        """Take requested ranges."""
        taken = sorted(self.requested)[:limit]
        self.requested.difference_update(taken)
        return taken

    def offer_backfill(self, entries: Sequence[Encoded]) -> None:
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
