"""What a consumer does about an outage: back off, and not count the deliveries it spoiled."""

from __future__ import annotations

from collections.abc import Iterable

from shared.stream.entries import Delivery

MAX_BACKOFF_SECONDS = 10.0


def backoff_seconds(outages: int, retry_delay_seconds: float) -> float:
    """How long to wait after `outages` transient failures in a row (doubling, capped)."""
    base = max(0.1, retry_delay_seconds)
    return min(MAX_BACKOFF_SECONDS, base * 2 ** min(outages - 1, 8))


class SparedDeliveries(dict[str, int]):
    """Entry id → how many of its deliveries met an outage (they do not count as attempts)."""

    def met_outage(self, deliveries: Iterable[Delivery]) -> None:
        """These deliveries met an outage: do not count them."""
        for delivery in deliveries:
            self[delivery.entry_id] = self.get(delivery.entry_id, 0) + 1

    def attempts(self, delivery: Delivery) -> int:
        """The deliveries of an entry that did not end in an outage (as far as we saw)."""
        return delivery.deliveries - self.get(delivery.entry_id, 0)

    def forget(self, entry_ids: Iterable[str]) -> None:
        """The entries are acknowledged or dead-lettered: nothing to remember."""
        if self:
            for entry_id in entry_ids:
                self.pop(entry_id, None)
