"""Who may apply: one holder of an `ApplierLock` at a time (`shared.db.PostgresAdvisoryLock`)."""

from __future__ import annotations

from typing import Protocol


class ApplierLock(Protocol):
    """Who may apply: one holder at a time; the others stand by."""

    def acquire(self) -> bool:
        """Try to become the holder; True if this process holds the lock now."""

    def held(self) -> bool:
        """True while this process still holds the lock."""

    def release(self) -> None:
        """Give the lock up."""


class NoLock:
    """The lock of a consumer that is always allowed to apply."""

    def acquire(self) -> bool:
        """Always granted."""
        return True

    def held(self) -> bool:
        """Always held."""
        return True

    def release(self) -> None:
        """Nothing to release."""
