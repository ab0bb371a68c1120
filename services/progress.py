"""The progress line every long operator command prints (republish, rebuild, verify)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """How far a long command got: done of total, rate and ETA."""

    verb: str
    done: int
    total: int
    elapsed: float

    @property
    def rate(self) -> float:
        """Events per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def line(self) -> str:
        """`rebuilt 1,000/5,000 (20%), 12,000 events/s, ETA 0:00:03`."""
        share = 100 * self.done // self.total if self.total else 100
        left = (self.total - self.done) / self.rate if self.rate else 0.0
        eta = time.strftime("%H:%M:%S", time.gmtime(max(0.0, left)))
        return (f"{self.verb} {self.done:,}/{self.total:,} ({share}%), "
                f"{self.rate:,.0f} events/s, ETA {eta}")


class ProgressReport:
    """Tells a sink how far a command got from `start` to `target`, every `every` seconds."""

    def __init__(self, sink: Callable[[Progress], None], verb: str, start: int, target: int,
                 every: float) -> None:
        self.sink, self.verb, self.every = sink, verb, every
        self.start, self.target = start, target
        self.started = self.last = time.monotonic()

    def reached(self, current: int) -> None:
        """The command reached `current`: report it when due, and at the target."""
        now = time.monotonic()
        if now - self.last >= self.every or current >= self.target:
            self.last = now
            self.sink(Progress(self.verb, current - self.start, self.target - self.start,
                               now - self.started))
