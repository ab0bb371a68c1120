"""One contract, two buses: RedisStreamBus (real Redis) and InMemoryBus must agree."""

from __future__ import annotations

import datetime as dt

import pytest
import redis

from shared.events import EventEnvelope, decode, encode
from shared.stream.bus import EventBus
from tests.fakes.bus import InMemoryBus, PublishingRedisBus

GROUP = "g"


def event(seq: int) -> EventEnvelope:
    """A minimal event with the given seq."""
    return EventEnvelope(
        event_id=f"e{seq}", seq=seq, type="TaskCreated", task_id=seq, version=1,
        occurred_at=dt.datetime(2025, 4, 5, tzinfo=dt.UTC), data={"title": f"t{seq}"},
    )


@pytest.fixture(params=["redis", "memory"])
def bus(request: pytest.FixtureRequest) -> EventBus:
    """Each bus implementation in turn."""
    if request.param == "memory":
        return InMemoryBus()
    client: redis.Redis = request.getfixturevalue("redis_client")
    return PublishingRedisBus(client, f"{request.getfixturevalue('namespace')}:events")


def seqs(deliveries: list) -> list[int]:
    return [d.seq for d in deliveries]


def test_publish_a_batch_and_read_it_back(bus):
    assert bus.publish([event(1), event(2), event(3)]) == 3
    assert bus.head() == 3
    found = bus.range(1, 3, 10)
    assert seqs(found) == [1, 2, 3]
    assert decode(found[1].payload) == event(2)


def test_republishing_adds_nothing_and_never_reorders(bus):
    bus.publish([event(1), event(2)])
    assert bus.publish([event(1), event(2)]) == 0
    assert bus.publish([event(2), event(3)]) == 1
    assert seqs(bus.range(1, 10, 10)) == [1, 2, 3]


def test_head_of_an_empty_stream_is_zero(bus):
    assert bus.head() == 0
    bus.ensure_group(GROUP)
    assert bus.head() == 0


def test_a_group_reads_each_entry_once_from_the_start(bus):
    bus.publish([event(1), event(2), event(3)])
    bus.ensure_group(GROUP)
    bus.ensure_group(GROUP)  # idempotent
    assert seqs(bus.read_new(GROUP, "a", 2, 0)) == [1, 2]
    assert seqs(bus.read_new(GROUP, "b", 10, 0)) == [3]
    assert bus.read_new(GROUP, "a", 10, 0) == []
    info = bus.group_info(GROUP)
    assert (info.pending, info.consumers, info.last_delivered_seq) == (3, 2, 3)


def test_reading_a_missing_group_fails(bus):
    bus.publish([event(1)])
    with pytest.raises(redis.ResponseError, match="NOGROUP"):
        bus.read_new("nope", "a", 1, 0)
    assert bus.group_info("nope") is None


def test_pending_entries_are_re_read_with_growing_delivery_counts(bus):
    bus.publish([event(1), event(2), event(3)])
    bus.ensure_group(GROUP)
    assert [d.deliveries for d in bus.read_new(GROUP, "a", 2, 0)] == [1, 1]
    bus.read_new(GROUP, "b", 1, 0)
    again = bus.read_pending(GROUP, "a", 10)
    assert [(d.seq, d.deliveries) for d in again] == [(1, 2), (2, 2)]
    assert [(d.seq, d.deliveries) for d in bus.read_pending(GROUP, "a", 1)] == [(1, 3)]
    assert [(d.seq, d.deliveries) for d in bus.read_pending(GROUP, "b", 10)] == [(3, 2)]


def test_acked_entries_are_no_longer_pending(bus):
    bus.publish([event(1), event(2)])
    bus.ensure_group(GROUP)
    bus.read_new(GROUP, "a", 10, 0)
    assert bus.ack(GROUP, ["1-0"]) == 1
    assert bus.ack(GROUP, ["1-0"]) == 0
    assert bus.ack(GROUP, []) == 0
    assert seqs(bus.read_pending(GROUP, "a", 10)) == [2]
    assert bus.group_info(GROUP).pending == 1


def test_stale_entries_are_claimed_by_another_consumer(bus):
    bus.publish([event(1), event(2), event(3)])
    bus.ensure_group(GROUP)
    bus.read_new(GROUP, "dead", 10, 0)
    assert bus.claim_stale(GROUP, "alive", 60_000, 10) == []
    claimed = bus.claim_stale(GROUP, "alive", 0, 2)
    assert [(d.seq, d.deliveries) for d in claimed] == [(1, 2), (2, 2)]
    assert seqs(bus.read_pending(GROUP, "alive", 10)) == [1, 2]
    assert seqs(bus.read_pending(GROUP, "dead", 10)) == [3]
    assert seqs(bus.claim_stale(GROUP, "alive", 0, 10)) == [1, 2, 3]


def test_dead_letters_leave_the_pending_list_and_are_counted(bus):
    bus.publish([event(1), event(2)])
    bus.ensure_group(GROUP)
    first, _ = bus.read_new(GROUP, "a", 10, 0)
    assert bus.dead_letter_count() == 0
    bus.dead_letter(GROUP, first, "ValueError: bad")
    assert bus.dead_letter_count() == 1
    assert seqs(bus.read_pending(GROUP, "a", 10)) == [2]


def test_range_returns_a_window_oldest_first(bus):
    bus.publish([event(n) for n in range(1, 8)])
    assert seqs(bus.range(3, 5, 10)) == [3, 4, 5]
    assert seqs(bus.range(3, 7, 2)) == [3, 4]
    assert bus.range(8, 9, 10) == []


def test_delivery_counts_stay_right_when_consumers_interleave(bus):
    bus.publish([event(n) for n in range(1, 7)])
    bus.ensure_group(GROUP)
    bus.read_new(GROUP, "a", 1, 0)
    bus.read_new(GROUP, "b", 4, 0)
    bus.read_new(GROUP, "a", 1, 0)
    assert [(d.seq, d.deliveries) for d in bus.read_pending(GROUP, "a", 10)] == [(1, 2), (6, 2)]
    claimed = bus.claim_stale(GROUP, "a", 0, 10)
    assert [(d.seq, d.deliveries) for d in claimed] == [
        (1, 3), (2, 2), (3, 2), (4, 2), (5, 2), (6, 3)]


def test_trimming_keeps_what_a_group_has_not_acknowledged(bus):
    bus.publish([event(n) for n in range(1, 11)])
    bus.ensure_group(GROUP)
    bus.read_new(GROUP, "a", 4, 0)
    bus.ack(GROUP, ["1-0", "2-0"])  # 3 and 4 still pending
    assert bus.trim(keep=2) == 2
    assert seqs(bus.range(1, 10, 20)) == list(range(3, 11))
    bus.ack(GROUP, ["3-0", "4-0"])
    bus.read_new(GROUP, "a", 3, 0)  # 5..7 delivered and pending, 8..10 never delivered
    assert bus.trim(keep=2) == 2
    assert seqs(bus.range(1, 10, 20)) == list(range(5, 11))
    bus.ack(GROUP, ["5-0", "6-0", "7-0"])
    assert bus.trim(keep=2) == 3  # 8..10 not delivered yet: kept, though beyond `keep`
    assert seqs(bus.range(1, 10, 20)) == [8, 9, 10] and bus.head() == 10


def test_trimming_follows_the_slowest_group_and_keeps_the_last_entries(bus):
    bus.publish([event(n) for n in range(1, 11)])
    bus.ensure_group(GROUP)
    bus.ensure_group("slow")
    bus.ack(GROUP, [d.entry_id for d in bus.read_new(GROUP, "a", 10, 0)])
    bus.ack("slow", [d.entry_id for d in bus.read_new("slow", "b", 6, 0)])
    assert bus.trim(keep=1) == 6
    assert seqs(bus.range(1, 10, 20)) == [7, 8, 9, 10]
    bus.ack("slow", [d.entry_id for d in bus.read_new("slow", "b", 10, 0)])
    assert bus.trim(keep=3) == 1
    assert seqs(bus.range(1, 10, 20)) == [8, 9, 10]


def test_trimming_without_groups_keeps_the_last_entries(bus):
    assert bus.trim(keep=3) == 0  # no stream yet
    bus.publish([event(n) for n in range(1, 11)])
    assert bus.trim(keep=3) == 7
    assert seqs(bus.range(1, 10, 20)) == [8, 9, 10] and bus.head() == 10
    assert bus.publish([event(5)]) == 0  # a trimmed id is still below the head


def test_events_missing_from_the_stream_are_requested_put_back_and_released(bus):
    assert bus.backfill(3, 9, 5) == []
    assert bus.backfill(3, 9, 5) == []  # asked twice, requested once
    assert bus.backfill_requests(10) == [(3, 7)]
    assert bus.backfill_requests(10) == []
    bus.offer_backfill([(seq, encode(event(seq))) for seq in (3, 4, 5)])
    found = bus.backfill(3, 9, 2)
    assert seqs(found) == [3, 4] and all(d.backfilled for d in found)
    assert decode(found[1].payload) == event(4) and bus.backfill_requests(10) == []
    assert seqs(bus.backfill(4, 9, 5)) == [4, 5]
    assert bus.backfill_requests(10) == [(4, 8)]  # 6..8 are not there yet
    bus.release_backfill(4)
    assert seqs(bus.backfill(1, 9, 9)) == [5]


def test_a_pending_entry_deleted_by_trimming_is_left_out(redis_client, namespace):
    """Redis only: XREADGROUP from 0 answers a trimmed pending entry with no fields."""
    bus = PublishingRedisBus(redis_client, f"{namespace}:events")
    bus.publish([event(1), event(2), event(3)])
    bus.ensure_group(GROUP)
    assert seqs(bus.read_new(GROUP, "c1", 10, 0)) == [1, 2, 3]
    redis_client.xdel(bus.stream, "2-0")
    pending = bus.read_pending(GROUP, "c1", 10)
    assert seqs(pending) == [1, 3]
    assert decode(pending[1].payload) == event(3)
