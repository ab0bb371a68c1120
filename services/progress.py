"""The progress line every long operator command prints (republish, rebuild, verify)."""

from __future__ import annotations

import time
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
