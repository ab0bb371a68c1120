"""Read your own writes. A command answers with `X-Event-Seq`, the position in the event log
of its last event (unless the log's numbering was held by a bulk writer, an import, which a
command never waits for); a read given `min_seq=<n>` waits, up to a bound, until what it
reads from has applied position n, and refuses with a 503 rather than answer with older
data."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from marshmallow import fields

from shared.metrics import READ_WAIT_SECONDS, READS_WAITING
from shared.pagination import bounded_integer

EVENT_SEQ_HEADER = "X-Event-Seq"
MIN_SEQ = "min_seq"
INVALID_MIN_SEQ = "Invalid min_seq, expected a position of the event log (an integer from 0)"
FIRST_POLL = 0.002  # seconds; doubled after every look, up to LAST_POLL
LAST_POLL = 0.025


class PositionNotReached(Exception):
    """The side a read reads from has not applied the position asked for in time."""

    def __init__(self, wanted: int, reached: int) -> None:
        super().__init__(f"Not caught up with position {wanted} of the event log yet "
                         f"(at {reached}), please retry")
        self.wanted = wanted
        self.reached = reached


def position_headers(position: int | None) -> dict[str, str]:
    """The header a command's answer carries: the position of its last event (none when it
    is not known yet)."""
    return {} if position is None else {EVENT_SEQ_HEADER: str(position)}


def min_seq_field() -> fields.Integer:
    """The `min_seq` query parameter of a read."""
    return bounded_integer(INVALID_MIN_SEQ, 0, 2**63 - 1, metadata={
        "description": "Read your own write: pass a command's `X-Event-Seq` to have the read "
                       "wait (up to `READ_WAIT_SECONDS`, 2 s by default, then 503) until it "
                       "includes that position of the event log", "example": 1042})


@dataclass(frozen=True)
class AppliedPosition:
    """How far the events a service reads from are applied, and the wait for a position.

    `current` reads the position (a projection's checkpoint, the event store's head);
    `holds(n)`, when given, tells whether position n is applied more cheaply than reading
    the position (the event store: one point lookup, where its head is a walk down the seq
    index past an import's rows that no snapshot can see yet). `timeout` bounds the wait.
    `clock` and `sleep` are replaced in unit tests.
    """

    current: Callable[[], int]
    timeout: float = 2.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Any] = time.sleep
    holds: Callable[[int], bool] | None = None

    def wait_for(self, wanted: int | None) -> None:
        """Return once position `wanted` is applied (at once without one); else raise
        PositionNotReached after `timeout` seconds."""
        if wanted is None or self._applied(wanted):
            return
        started = self.clock()
        with _counted_wait(started, self.clock):
            self._poll(wanted, started + self.timeout)

    def _poll(self, wanted: int, deadline: float) -> None:
        delay = FIRST_POLL
        while True:
            self.sleep(max(0.0, min(delay, deadline - self.clock())))
            if self._applied(wanted):
                return
            if self.clock() >= deadline:
                raise PositionNotReached(wanted, self.current())
            delay = min(delay * 2, LAST_POLL)

    def _applied(self, wanted: int) -> bool:
        if self.holds is None:
            return self.current() >= wanted
        return wanted <= 0 or self.holds(wanted)


@contextmanager
def _counted_wait(started: float, clock: Callable[[], float]) -> Iterator[None]:
    """Count the read as waiting while it waits, and time the wait by its outcome."""
    READS_WAITING.inc()
    outcome = "timeout"
    try:
        yield
        outcome = "applied"
    finally:
        READS_WAITING.dec()
        READ_WAIT_SECONDS.labels(outcome).observe(clock() - started)
