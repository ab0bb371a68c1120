"""Operator use cases on the event log: republish to the stream, show one event, tail.

Stream entry ids are `<seq>-0` and Redis never accepts an id at or below the stream's head,
so the stream can only grow at its end. Republishing therefore adds what is missing *above*
the head; entries missing below it (trimmed, deleted) can only come back by deleting the
stream and republishing it whole (`rebuild=True`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from services.progress import Progress
from services.task_service.adapters.stored_events import StoredEvents
from shared.events import EventEnvelope, decode, format_timestamp
from shared.stream.redis_bus import RedisStreamBus

BATCH_SIZE = 1000  # events per read and pipelined XADD of a republish


class RepublishRefused(Exception):
    """Republishing as asked would leave a hole in the stream."""


@dataclass(frozen=True)
class Republished:
    """What a republish did."""

    stream_head_before: int
    first_seq: int
    last_seq: int
    added: int
    skipped: int
    rebuilt: bool


def republish(events: StoredEvents, bus: RedisStreamBus, from_seq: int, *,
              rebuild: bool = False, batch_size: int = BATCH_SIZE,
              progress: Callable[[Progress], None] = lambda _: None) -> Republished:
    """Publish stored events from `from_seq` (or from above the head) to the stream."""
    head = bus.head()
    if rebuild:
        if from_seq > 1:
            raise RepublishRefused(
                "--rebuild-stream republishes from seq 1: a stream that starts later looks "
                "to the relay like a stream that lost data")
        bus.drop()
        start = 1
    elif from_seq > head + 1:
        raise RepublishRefused(
            f"the stream's head is seq {head}: publishing from {from_seq} would leave seqs "
            f"{head + 1}..{from_seq - 1} missing for ever (ids never go backwards); "
            f"use --from-seq {head + 1} or lower")
    else:
        start = head + 1  # at or below the head Redis refuses every id: nothing to re-add
    added, last, read = _publish_from(events, bus, start, batch_size, progress)
    return Republished(head, start, last, added, read - added, rebuild)


def _publish_from(events: StoredEvents, bus: RedisStreamBus, start: int, batch_size: int,
                  progress: Callable[[Progress], None]) -> tuple[int, int, int]:
    started, added, read, after = time.monotonic(), 0, 0, start - 1
    total = max(0, events.head() - after)
    while entries := events.read(after, batch_size):
        added += bus.publish_encoded(entries)
        read, after = read + len(entries), entries[-1][0]
        progress(Progress("republished", read, max(total, read), time.monotonic() - started))
    return added, after, read


def find_event(events: StoredEvents, key: str) -> EventEnvelope | None:
    """A stored event by seq (digits) or event id (UUID); ValueError for anything else."""
    if key.isdigit():
        return events.one(seq=int(key))
    return events.one(event_id=uuid.UUID(key))


@dataclass(frozen=True)
class TailFilter:
    """Which events `tail` prints."""

    type: str | None = None
    task_id: int | None = None

    def matches(self, event: EventEnvelope) -> bool:
        """True when the event passes every given criterion."""
        return ((self.type is None or event.type == self.type)
                and (self.task_id is None or event.task_id == self.task_id))


def follow(bus: RedisStreamBus, from_seq: int | None, block_ms: int = 1000
           ) -> Iterator[EventEnvelope | None]:
    """Events on the stream from `from_seq` (default: only new ones), forever.

    Yields None after each empty wait so that callers can check their own stop conditions.
    """
    after = bus.head() if from_seq is None else max(0, from_seq - 1)
    while True:
        read = bus.read_after(after, 500, block_ms)
        if not read:
            yield None
        for delivery in read:
            after = delivery.seq
            yield decode(delivery.payload, delivery.entry_id)


def describe(event: EventEnvelope) -> str:
    """One readable line: seq, time, type, task and version, actor, data."""
    task = f"task={event.task_id} v{event.version}" if event.task_id is not None else "-"
    who = event.actor.username if event.actor else "-"
    data = json.dumps(event.data, ensure_ascii=False, separators=(",", ":"))
    if len(data) > 160:
        data = data[:157] + "..."
    return (f"{event.seq:>8}  {format_timestamp(event.occurred_at)}  {event.type:<22} "
            f"{task:<16} {who:<12} {data}")
