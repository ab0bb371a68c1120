"""Waiting for a position of the event log: at once, after a few looks, or refused in time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from prometheus_client import REGISTRY

from shared.positions import AppliedPosition, PositionNotReached


@dataclass
class FakeTime:
    """A clock that only moves when slept on."""

    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def applied_after(looks: int, position: int) -> Iterator[int]:
    """A position that reaches `position` at the given look (and stays)."""
    for _ in range(looks):
        yield position - 1
    while True:
        yield position


def waiting_reads() -> float | None:
    """Reads counted as waiting right now."""
    return REGISTRY.get_sample_value("taskstream_reads_waiting")


def test_no_min_seq_or_a_reached_one_never_waits() -> None:
    time = FakeTime()
    applied = AppliedPosition(lambda: 5, clock=lambda: time.now, sleep=time.sleep)
    applied.wait_for(None)
    applied.wait_for(5)
    applied.wait_for(0)
    assert time.slept == []


def test_waits_until_the_position_is_applied() -> None:
    time = FakeTime()
    looks = applied_after(4, 9)
    seen: list[float] = []

    def current() -> int:
        seen.append(waiting_reads())
        return next(looks)

    AppliedPosition(current, timeout=2.0, clock=lambda: time.now, sleep=time.sleep).wait_for(9)
    assert len(time.slept) == 4 and time.slept == sorted(time.slept)  # backing off
    assert seen[0] == 0 and set(seen[1:]) == {1}  # counted as waiting while it waited
    assert waiting_reads() == 0


def test_gives_up_after_the_timeout_naming_both_positions() -> None:
    time = FakeTime()
    applied = AppliedPosition(lambda: 3, timeout=0.5, clock=lambda: time.now, sleep=time.sleep)
    with pytest.raises(PositionNotReached) as refused:
        applied.wait_for(7)
    assert (refused.value.wanted, refused.value.reached) == (7, 3)
    assert str(refused.value) == ("Not caught up with position 7 of the event log yet (at 3), "
                                  "please retry")
    assert time.now == pytest.approx(0.5) and max(time.slept) <= 0.025
    assert waiting_reads() == 0


def test_a_holds_lookup_answers_instead_of_the_position_and_names_it_on_refusal() -> None:
    time = FakeTime()
    held: set[int] = {1, 2, 3}
    asked: list[int] = []

    def holds(seq: int) -> bool:
        asked.append(seq)
        return seq in held

    applied = AppliedPosition(lambda: max(held), timeout=0.5, clock=lambda: time.now,
                              sleep=time.sleep, holds=holds)
    applied.wait_for(0)
    applied.wait_for(3)
    assert (asked, time.slept) == ([3], [])
    with pytest.raises(PositionNotReached) as refused:
        applied.wait_for(5)
    assert (refused.value.wanted, refused.value.reached) == (5, 3)
    assert set(asked) == {3, 5}
