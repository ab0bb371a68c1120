"""What a consumer applies events through: a projection, and its batches (transactions)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol


class Batch(Protocol):
    """One open transaction of a projection: events applied in order, then the checkpoint.

    Events come as the stream holds them (JSON, see `shared.events.decode`), so a batch may
    take some without decoding them.
    """

    checkpoint: int

    def apply_encoded(self, payload: str, entry_id: str) -> None:
        """Apply one event, given as its JSON envelope and stream entry id."""

    def skip(self, seq: int, error: str) -> None:
        """Record that the event `seq` is passed over (dead-lettered), in this transaction."""

    def advance(self, seq: int) -> None:
        """Set the checkpoint that commits with the effects."""


class Projection(Protocol):
    """Something that applies events and keeps its checkpoint with the effect."""

    def batch(self) -> AbstractContextManager[Batch]:
        """Open a transaction, read the checkpoint (locked); commit on a clean exit."""
