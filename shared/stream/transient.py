"""Which errors are outages or conflicts that a retry gets past: never an event's fault
(`shared.outages` is where they are told apart)."""

from __future__ import annotations

from shared.outages import is_transient

__all__ = ["is_transient"]
