"""The shared stream consumer over the in-memory bus and an in-memory projection."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import redis
from sqlalchemy.exc import DBAPIError, OperationalError

from shared.events import EventEnvelope, decode, encode
from shared.stream.consumer import StreamConsumer
from shared.stream.entries import Delivery
from shared.stream.options import ConsumerOptions
from shared.stream.transient import is_transient
from tests.fakes.bus import InMemoryBus
from tests.unit.logger_service.factories import EventFactory


class PgError(Exception):
    """A driver error carrying a SQLSTATE, as psycopg2's errors do."""

    def __init__(self, pgcode: str) -> None:
        super().__init__(f"SQLSTATE {pgcode}")
        self.pgcode = pgcode


@dataclass
class FakeBatch:
    """A transaction of FakeProjection: effects become visible only on commit."""

    checkpoint: int
    applied: list[int] = field(default_factory=list)
    fail_on: set[int] = field(default_factory=set)
    outages: dict[int, int] = field(default_factory=dict)

    def apply(self, event: EventEnvelope) -> None:
        if self.outages.get(event.seq, 0) > 0:
            self.outages[event.seq] -= 1
            raise OperationalError("UPDATE task_state ...", {}, ConnectionError(
                "server closed the connection unexpectedly"))
        if event.seq in self.fail_on:
            raise ValueError(f"cannot apply {event.seq}")
        self.applied.append(event.seq)

    def apply_encoded(self, payload: str, entry_id: str) -> None:
        self.apply(decode(payload, entry_id))

    def skip(self, seq: int, error: str) -> None:
        """Skips are not recorded here."""

    def advance(self, seq: int) -> None:
        self.checkpoint = seq


@dataclass
class FakeProjection:
    """Applied seqs and a checkpoint, committed together or not at all."""

    applied: list[int] = field(default_factory=list)
    checkpoint: int = 0
    fail_on: set[int] = field(default_factory=set)
    failures_left: dict[int, int] = field(default_factory=dict)
    outages: dict[int, int] = field(default_factory=dict)
    commits: int = 0

    @contextmanager
    def batch(self) -> Iterator[FakeBatch]:
        failing = self.fail_on | {s for s, n in self.failures_left.items() if n > 0}
        batch = FakeBatch(self.checkpoint, fail_on=failing, outages=self.outages)
        try:
            yield batch
        except Exception as exc:
            for seq in list(self.failures_left):
                if f"cannot apply {seq}" in str(exc):
                    self.failures_left[seq] -= 1
            raise
        self.applied += batch.applied
        self.checkpoint = batch.checkpoint
        self.commits += 1


class CrashOnAck(InMemoryBus):
    """A bus whose consumer 'dies' between its commit and its XACK, once."""

    crash_next_ack = False

    def ack(self, group, entry_ids):
        if self.crash_next_ack:
            self.crash_next_ack = False
            raise SystemExit("killed before XACK")
        return super().ack(group, entry_ids)


class FakeLock:
    """An applier lock shared by consumers in one test."""

    holder: object | None = None

    def __init__(self, owner: str, shared: dict) -> None:
        self.owner, self.shared = owner, shared

    def acquire(self) -> bool:
        if self.shared.get("holder") in (None, self.owner):
            self.shared["holder"] = self.owner
            return True
        return False

    def held(self) -> bool:
        return self.shared.get("holder") == self.owner

    def release(self) -> None:
        if self.held():
            self.shared["holder"] = None


def options(name: str = "c1", **overrides) -> ConsumerOptions:
    values = {"group": "g", "consumer": name, "block_ms": 0, "max_deliveries": 3,
              "retry_delay_seconds": 0, "batch_size": 100}
    values.update(overrides)
    return ConsumerOptions(**values)


def consumer(bus, projection, name="c1", lock=None, **overrides) -> StreamConsumer:
    bus.ensure_group("g")
    made = StreamConsumer(bus, projection, options(name, **overrides), lock)
    made.ensure_active()
    return made


def settle(made: StreamConsumer, limit: int = 30) -> None:
    for _ in range(limit):
        if made.step() == 0 and not made.recheck_pending:
            return
    raise AssertionError("did not settle")


@pytest.fixture
def events() -> EventFactory:
    return EventFactory()


def publish(bus: InMemoryBus, events: EventFactory, count: int) -> None:
    bus.publish([events.created(n) for n in range(1, count + 1)])


def test_batches_are_applied_in_order_and_acknowledged(events):
    bus, projection = InMemoryBus(), FakeProjection()
    publish(bus, events, 5)
    settle(consumer(bus, projection, batch_size=2))
    assert projection.applied == [1, 2, 3, 4, 5]
    assert projection.checkpoint == 5 and projection.commits == 3
    assert bus.group_info("g").pending == 0


def test_a_crash_between_commit_and_ack_applies_nothing_twice(events):
    bus, projection = CrashOnAck(), FakeProjection()
    publish(bus, events, 3)
    first = consumer(bus, projection)
    bus.crash_next_ack = True
    with pytest.raises(SystemExit):
        first.step()
    assert projection.applied == [1, 2, 3] and bus.group_info("g").pending == 3
    settle(consumer(bus, projection))  # restarted under the same name
    assert projection.applied == [1, 2, 3]
    assert bus.group_info("g").pending == 0


def test_the_same_event_delivered_three_times_is_applied_once(events):
    bus, projection = InMemoryBus(), FakeProjection()
    publish(bus, events, 2)
    made = consumer(bus, projection)
    settle(made)
    again = bus.range(1, 2, 10)
    for _ in range(3):
        made.handle(again)
    assert projection.applied == [1, 2]


def test_a_poison_event_is_dead_lettered_after_n_deliveries_and_the_rest_applied(events):
    bus, projection = InMemoryBus(), FakeProjection(fail_on={2})
    publish(bus, events, 4)
    made = consumer(bus, projection)
    settle(made)
    assert projection.applied == [1, 3, 4]
    assert projection.checkpoint == 4
    assert bus.dead_letter_count() == 1 and made.dead_lettered == 1
    assert bus.dead[0]["entry_id"] == "2-0" and "cannot apply 2" in bus.dead[0]["error"]
    assert bus.dead[0]["deliveries"] == "3"
    assert bus.group_info("g").pending == 0


def test_a_passing_failure_is_retried_not_dead_lettered(events):
    bus, projection = InMemoryBus(), FakeProjection(failures_left={2: 2})
    publish(bus, events, 3)
    settle(consumer(bus, projection, max_deliveries=5))
    assert projection.applied == [1, 2, 3] and bus.dead_letter_count() == 0


def test_a_lost_database_connection_is_waited_out_never_dead_lettered(events):
    bus, projection = InMemoryBus(), FakeProjection(outages={2: 6})
    publish(bus, events, 3)
    made = consumer(bus, projection, max_deliveries=2)
    for _ in range(6):
        with pytest.raises(OperationalError):
            made.step()
    settle(made)
    assert projection.applied == [1, 2, 3] and bus.dead_letter_count() == 0
    assert bus.group_info("g").pending == 0


def test_deliveries_that_met_an_outage_do_not_count_towards_the_dead_letters(events):
    bus, projection = InMemoryBus(), FakeProjection(outages={2: 4}, failures_left={2: 2})
    publish(bus, events, 3)
    made = consumer(bus, projection, max_deliveries=3)
    for _ in range(4):
        with pytest.raises(OperationalError):
            made.step()
    settle(made)  # two real failures, fewer than three: applied on the third attempt
    assert projection.applied == [1, 2, 3] and bus.dead_letter_count() == 0
    assert made.spared == {}


@pytest.mark.parametrize(("error", "transient"), [
    (OperationalError("SELECT", {}, ConnectionError("server closed the connection")), True),
    (DBAPIError("UPDATE", {}, PgError("40001")), True),
    (DBAPIError("UPDATE", {}, PgError("40P01")), True),
    (DBAPIError("UPDATE", {}, PgError("55P03")), True),
    (DBAPIError("UPDATE", {}, PgError("57P01")), True),
    (DBAPIError("SELECT", {}, PgError("08006")), True),
    (redis.ConnectionError("Connection refused"), True),
    (DBAPIError("INSERT", {}, PgError("23502")), False),  # NOT NULL: the event's fault
    (DBAPIError("INSERT", {}, PgError("22P02")), False),
    (ValueError("no task_id"), False),
])
def test_outages_and_conflicts_are_transient_and_bad_events_are_not(error, transient):
    assert is_transient(error) is transient


def test_undecodable_payloads_are_poison_too(events):
    bus, projection = InMemoryBus(), FakeProjection()
    publish(bus, events, 2)
    bus.entries[1] = "not json"
    settle(consumer(bus, projection))
    assert projection.applied == [2] and bus.dead_letter_count() == 1


def test_a_consumer_fills_the_gap_another_left_so_nothing_is_skipped(events):
    bus, projection = InMemoryBus(), FakeProjection()
    publish(bus, events, 3)
    bus.ensure_group("g")
    bus.read_new("g", "dead", 2, 0)  # read 1 and 2, then died before applying them
    made = consumer(bus, projection, "alive", claim_idle_ms=60_000)
    made.step()  # reads 3, fetches 1-2 from the stream first
    assert projection.applied == [1, 2, 3]
    settle(consumer(bus, projection, "alive", claim_idle_ms=0))
    assert projection.applied == [1, 2, 3] and bus.group_info("g").pending == 0


def test_a_poison_event_in_the_gap_is_not_blamed_on_the_newer_one(events):
    bus, projection = InMemoryBus(), FakeProjection(fail_on={1})
    publish(bus, events, 2)
    bus.ensure_group("g")
    bus.read_new("g", "dead", 1, 0)
    made = StreamConsumer(bus, projection, options("alive", claim_idle_ms=60_000))
    for _ in range(6):
        made.step()
    assert projection.applied == [] and bus.dead_letter_count() == 0
    made.claim(min_idle_ms=0)  # the dead consumer's entry, now ours, fails on its own
    settle(made)
    assert bus.dead[0]["entry_id"] == "1-0" and projection.applied == [2]


def serve_backfill(bus: InMemoryBus, published: list[EventEnvelope]) -> None:
    """Do what the relay does: put requested events back from the store (here, a list)."""
    for first, last in bus.backfill_requests(10):
        bus.offer_backfill([(e.seq, encode(e)) for e in published if first <= e.seq <= last])


def settle_with_relay(made: StreamConsumer, bus: InMemoryBus, published: list[EventEnvelope],
                      limit: int = 50) -> None:
    for _ in range(limit):
        handled = made.step()
        serve_backfill(bus, published)
        if handled == 0 and not made.recheck_pending:
            return
    raise AssertionError("did not settle")


def trimmed_before_the_group(bus: InMemoryBus, events: EventFactory, count: int, keep: int
                             ) -> list[EventEnvelope]:
    """`count` events published and trimmed to the last `keep` before the group existed."""
    published = [events.created(n) for n in range(1, count + 1)]
    bus.publish(published)
    bus.trim(keep)
    return published


def test_a_gap_the_stream_no_longer_holds_is_filled_from_the_store(events):
    bus, projection = InMemoryBus(), FakeProjection()
    published = trimmed_before_the_group(bus, events, 10, keep=3)
    made = consumer(bus, projection)
    assert made.step() == -1 and projection.applied == []  # 8..10 delivered, 1..7 missing
    settle_with_relay(made, bus, published)
    assert projection.applied == list(range(1, 11)) and projection.checkpoint == 10
    assert bus.dead_letter_count() == 0 and bus.group_info("g").pending == 0
    assert bus.put_back == {}  # released once applied


def test_a_gap_longer_than_a_batch_is_filled_batch_by_batch(events):
    bus, projection = InMemoryBus(), FakeProjection()
    published = trimmed_before_the_group(bus, events, 20, keep=2)
    made = consumer(bus, projection, batch_size=3)
    settle_with_relay(made, bus, published)
    assert projection.applied == list(range(1, 21)) and bus.dead_letter_count() == 0
    assert projection.commits >= 6  # 1..18 came back three at a time


def test_a_poison_event_put_back_from_the_store_is_dead_lettered_and_the_rest_applied(events):
    bus, projection = InMemoryBus(), FakeProjection(fail_on={2})
    published = trimmed_before_the_group(bus, events, 6, keep=2)
    made = consumer(bus, projection)
    settle_with_relay(made, bus, published)
    assert projection.applied == [1, 3, 4, 5, 6] and projection.checkpoint == 6
    assert [d["entry_id"] for d in bus.dead] == ["2-0"]
    assert bus.group_info("g").pending == 0


def test_only_the_lock_holder_applies_and_a_standby_takes_over(events):
    bus, projection, shared = InMemoryBus(), FakeProjection(), {}
    publish(bus, events, 2)
    active = consumer(bus, projection, "a", FakeLock("a", shared))
    standby = StreamConsumer(bus, projection, options("b"), FakeLock("b", shared))
    bus.read_new("g", "a", 2, 0)  # `a` read its batch, then died before committing
    assert standby.ensure_active() is False
    shared["holder"] = None  # its session ended, so the lock is free
    assert standby.ensure_active() is True  # takeover claims what `a` left pending
    settle(standby)
    assert projection.applied == [1, 2] and bus.group_info("g").pending == 0
    assert active.ensure_active() is False


def test_run_stops_when_asked(events):
    bus, projection = InMemoryBus(), FakeProjection()
    publish(bus, events, 3)
    made = StreamConsumer(bus, projection, options(block_ms=0))
    stop = threading.Event()
    runner = threading.Thread(target=made.run, args=(stop,))
    runner.start()
    deadline = threading.Event()
    for _ in range(200):
        if projection.checkpoint == 3:
            break
        deadline.wait(0.01)
    stop.set()
    runner.join(timeout=5)
    assert not runner.is_alive() and projection.applied == [1, 2, 3]


def test_deliveries_for_nothing_do_nothing():
    made = consumer(InMemoryBus(), FakeProjection())
    assert made.handle([]) == 0
    assert made.handle([Delivery("1-0", "")]) == -1


def test_a_stop_leaves_no_batch_half_read(events):
    bus, projection = InMemoryBus(), FakeProjection()
    publish(bus, events, 50)
    made = StreamConsumer(bus, projection, options(batch_size=1, block_ms=0))
    stop = threading.Event()
    runner = threading.Thread(target=made.run, args=(stop,))
    runner.start()
    for _ in range(500):
        if projection.checkpoint >= 3:
            break
        stop.wait(0.001)
    stop.set()
    runner.join(timeout=5)
    delivered = bus.group_info("g").last_delivered_seq
    assert projection.checkpoint == delivered and bus.group_info("g").pending == 0
    assert projection.applied == list(range(1, delivered + 1))


@dataclass
class RecordingObserver:
    """Collects what the consumer reports."""

    batches: list[int] = field(default_factory=list)
    dead: list[int] = field(default_factory=list)

    def committed(self, applied: int, seconds: float) -> None:
        self.batches.append(applied)

    def dead_lettered(self, seq: int) -> None:
        self.dead.append(seq)

    def tick(self) -> None:
        """Nothing to refresh."""


@dataclass
class SkipRecordingBatch(FakeBatch):
    """A batch that records skipped events, as the logger's does."""

    skipped: dict[int, str] = field(default_factory=dict)

    def skip(self, seq: int, error: str) -> None:
        self.skipped[seq] = error


@dataclass
class SkipRecordingProjection(FakeProjection):
    skipped: dict[int, str] = field(default_factory=dict)

    @contextmanager
    def batch(self) -> Iterator[FakeBatch]:
        batch = SkipRecordingBatch(self.checkpoint, fail_on=self.fail_on)
        yield batch
        self.applied += batch.applied
        self.skipped.update(batch.skipped)
        self.checkpoint = batch.checkpoint


def test_the_observer_hears_batches_and_dead_letters_and_skips_are_recorded(events):
    bus, projection = InMemoryBus(), SkipRecordingProjection(fail_on={2})
    observer = RecordingObserver()
    publish(bus, events, 4)
    bus.ensure_group("g")
    settle(StreamConsumer(bus, projection, options(batch_size=10), observer=observer))
    assert projection.applied == [1, 3, 4]
    assert observer.dead == [2]
    assert sum(observer.batches) == 3
    assert list(projection.skipped) == [2] and "cannot apply 2" in projection.skipped[2]


def test_a_pass_that_handled_less_than_a_batch_lingers_and_a_full_one_does_not(events):
    """The next pass starts no sooner than `linger_ms` after a small one's start, so a
    trickle is applied in batches of several events; a full batch is followed at once."""
    bus, projection = InMemoryBus(), FakeProjection()
    made = consumer(bus, projection, batch_size=5, linger_ms=2000)
    publish(bus, events, 3)
    assert 1.0 < made._pass() <= 2.0  # three of five: wait out the rest of the linger
    bus.publish([events.created(n) for n in range(4, 9)])
    assert made._pass() == 0.0  # a full batch: there may be more at once
    assert made._pass() == 0.0  # nothing came: the blocking read already waited
    assert projection.applied == list(range(1, 9))
    other = InMemoryBus()
    no_linger = consumer(other, FakeProjection(), batch_size=5, linger_ms=0)
    publish(other, events, 1)
    assert no_linger._pass() == 0.0
