"""The feed's use case on a fake log and a fake clock: pages, `next`, and the bounded wait."""

from __future__ import annotations

import json

from services.task_service.service_layer.feed import MAX_WAIT, WaitSlots, read_feed


class FakeLog:
    """Events 1..head; `grow_at` adds one more event at that (fake) time."""

    def __init__(self, head: int, clock: FakeClock, grow_at: float | None = None) -> None:
        self.head, self.clock, self.grow_at = head, clock, grow_at
        self.reads = 0

    def read(self, after: int, limit: int) -> list[tuple[int, str]]:
        self.reads += 1
        if self.grow_at is not None and self.clock.now >= self.grow_at:
            self.head, self.grow_at = self.head + 1, None
        last = min(self.head, after + limit)
        return [(seq, json.dumps({"seq": seq})) for seq in range(after + 1, last + 1)]


class FakeClock:
    """Time that moves only when slept."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_page_is_the_events_after_the_position_and_next_is_the_last_seq() -> None:
    clock = FakeClock()
    page = read_feed(FakeLog(5, clock), 2, 2)
    assert json.loads(page.json()) == {"events": [{"seq": 3}, {"seq": 4}], "next": 4}
    assert json.loads(read_feed(FakeLog(5, clock), 5, 2).json()) == {"events": [], "next": 5}


def test_a_wait_ends_when_an_event_arrives() -> None:
    clock = FakeClock()
    log = FakeLog(5, clock, grow_at=3.0)
    slots = WaitSlots(1)
    page = read_feed(log, 5, 10, wait=20, slots=slots, clock=clock, sleep=clock.sleep)
    assert [seq for seq, _ in page.events] == [6] and page.next == 6
    assert 3.0 <= clock.now < 3.5 and slots.taken() == 0


def test_a_wait_with_nothing_new_ends_at_its_bound_and_never_past_30_s() -> None:
    for wait, bound in ((2.5, 2.5), (300, MAX_WAIT)):
        clock = FakeClock()
        page = read_feed(FakeLog(5, clock), 5, 10, wait=wait, slots=WaitSlots(1), clock=clock,
                         sleep=clock.sleep)
        assert (page.events, page.next, clock.now) == ([], 5, bound)


def test_without_a_free_slot_or_a_wait_the_read_answers_at_once() -> None:
    clock = FakeClock()
    taken = WaitSlots(1)
    assert taken.try_take()
    for wait, slots in ((20, taken), (20, WaitSlots(0)), (20, None), (0, WaitSlots(1))):
        log = FakeLog(5, clock, grow_at=1.0)
        page = read_feed(log, 5, 10, wait=wait, slots=slots, clock=clock, sleep=clock.sleep)
        assert (page.events, clock.now, log.reads) == ([], 0.0, 1)
