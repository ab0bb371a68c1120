"""The sync feed: the events after a position of the log, read from the event store (so a
position never expires while the store holds it), waiting a while when there is none yet."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_WAIT = 30.0  # seconds a read may wait for a new event
FIRST_POLL = 0.01  # seconds between looks at the store while waiting, doubled up to LAST_POLL
LAST_POLL = 0.2


class EventLog(Protocol):
    """What the feed needs from the event store."""

    def read(self, after: int, limit: int) -> list[tuple[int, str]]: ...


@dataclass(frozen=True)
class FeedPage:
    """Events after a position, as envelope JSON in seq order, and the position to read from
    next (the last one's seq, or the position asked for when there was none)."""

    events: list[tuple[int, str]]
    next: int

    def json(self) -> str:
        """`{"events": [...], "next": n}`, joined from the stored JSON (nothing decoded)."""
        return ('{"events":[' + ",".join(payload for _seq, payload in self.events)
                + f'],"next":{self.next}}}')


class WaitSlots:
    """How many feed reads of this process may wait at once: each waiting read holds a
    server thread, and commands must always find one. A read that finds no slot free
    answers at once, and its client simply asks again."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.waiting = 0
        self.lock = threading.Lock()

    def try_take(self) -> bool:
        """Take a slot if one is free."""
        with self.lock:
            if self.waiting >= self.slots:
                return False
            self.waiting += 1
            return True

    def give_back(self) -> None:
        """Free a slot taken with try_take."""
        with self.lock:
            self.waiting -= 1

    def taken(self) -> int:
        """How many reads wait now."""
        return self.waiting


def read_feed(log: EventLog, after: int, limit: int, wait: float = 0.0,
              slots: WaitSlots | None = None, clock: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], Any] = time.sleep) -> FeedPage:
    """Up to `limit` events after `after`; when there is none, look again for up to `wait`
    seconds (if a wait slot is free) before answering with none."""
    found = log.read(after, limit)
    if found or wait <= 0 or slots is None or not slots.try_take():
        return _page(found, after)
    try:
        deadline, delay = clock() + min(wait, MAX_WAIT), FIRST_POLL
        while not found and clock() < deadline:
            sleep(max(0.0, min(delay, deadline - clock())))
            found, delay = log.read(after, limit), min(delay * 2, LAST_POLL)
    finally:
        slots.give_back()
    return _page(found, after)


def _page(found: list[tuple[int, str]], after: int) -> FeedPage:
    return FeedPage(found, found[-1][0] if found else after)
