"""Who hears what a consumer does: metrics, caches (`ConsumerObserver`)."""

from __future__ import annotations

from typing import Protocol


class ConsumerObserver(Protocol):
    """Hooks for metrics: what the consumer did, and a regular tick of its loop."""

    def committed(self, applied: int, seconds: float) -> None:
        """A batch of `applied` events committed in `seconds`."""

    def dead_lettered(self, seq: int) -> None:
        """The event `seq` went to the dead-letter stream."""

    def tick(self) -> None:
        """Called on every pass of the loop (throttle inside)."""


class NoObserver:
    """The observer of a consumer nobody watches."""

    def committed(self, applied: int, seconds: float) -> None:
        """Nothing to record."""

    def dead_lettered(self, seq: int) -> None:
        """Nothing to record."""

    def tick(self) -> None:
        """Nothing to refresh."""


class Observers:
    """Several observers heard as one."""

    def __init__(self, *observers: ConsumerObserver) -> None:
        self.observers = observers

    def committed(self, applied: int, seconds: float) -> None:
        """Tell each."""
        for observer in self.observers:
            observer.committed(applied, seconds)

    def dead_lettered(self, seq: int) -> None:
        """Tell each."""
        for observer in self.observers:
            observer.dead_lettered(seq)

    def tick(self) -> None:
        """Tick each."""
        for observer in self.observers:
            observer.tick()
