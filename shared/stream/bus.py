"""The `EventBus` protocol: what publishers and consumers need from the stream.

Entry ids are `<seq>-0`, so publishing the same event twice is refused by the stream itself
and a republish can never reorder it. Trimming keeps every entry a consumer group has not
acknowledged. A consumer that meets a gap anyway (its group made after a trim, Redis lost a
part of the stream) asks the publisher, which reads the event store, to put the missing events
back beside the stream: the "backfill". `redis_bus.RedisStreamBus` is the implementation;
tests/contract/test_bus.py holds it and the tests' in-memory fake to the same behaviour.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from shared.stream.entries import Delivery, Encoded, GroupInfo


class EventBus(Protocol):
    """What producers and consumers need from the stream."""

    def publish_encoded(self, entries: Sequence[Encoded]) -> int:
        """Append `(seq, payload)` entries as `<seq>-0`, skipping ids there; return how many."""

    def trim(self, keep: int) -> int:
        """Remove entries every group has acknowledged, keeping the last `keep` at least."""

    def head(self) -> int:
        """Return the seq of the last entry ever added (0 when the stream is empty or gone)."""

    def ensure_group(self, group: str) -> None:
        """Create the consumer group (reading from the start) if it does not exist."""

    def read_new(self, group: str, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        """Read entries never delivered to the group."""

    def read_pending(self, group: str, consumer: str, count: int) -> list[Delivery]:
        """Re-read entries delivered to this consumer and not yet acknowledged."""

    def claim_stale(
        self, group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[Delivery]:
        """Take over entries other consumers left pending longer than `min_idle_ms`."""

    def ack(self, group: str, entry_ids: Iterable[str]) -> int:
        """Acknowledge entries; returns how many were pending."""

    def range(self, first_seq: int, last_seq: int, count: int) -> list[Delivery]:
        """Return entries with `first_seq <= seq <= last_seq`, oldest first."""

    def dead_letter(self, group: str, delivery: Delivery, error: str) -> None:
        """Move an entry to the dead-letter stream with its error and acknowledge it."""

    def dead_letter_count(self) -> int:
        """Return how many entries the dead-letter stream holds."""

    def backfill(self, first_seq: int, last_seq: int, count: int) -> list[Delivery]:
        """Events put back from the store in `first_seq..last_seq` (at most `count`, oldest
        first); when they do not all cover the range yet, it is requested from the publisher."""

    def release_backfill(self, through_seq: int) -> None:
        """Forget put-back events up to `through_seq` (they are applied)."""

    def backfill_requests(self, limit: int) -> list[tuple[int, int]]:
        """Take up to `limit` requested `(first_seq, last_seq)` ranges (the publisher's side)."""

    def offer_backfill(self, entries: Sequence[Encoded]) -> None:
        """Put stored `(seq, payload)` events back for consumers (the publisher's side)."""

    def group_info(self, group: str) -> GroupInfo | None:
        """Return the group's pending count, consumers and last delivered seq."""

