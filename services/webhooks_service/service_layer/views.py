"""What the webhooks service tells about its subscriptions, deliveries and replays."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")


@dataclass(frozen=True)
class SubscriptionView:
    """A subscription as the API shows it (its secrets are never shown again)."""

    id: int
    url: str
    description: str | None
    event_types: list[str] | None
    paused: bool
    paused_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class NewSubscription:
    """A subscription just made, with its signing secret (shown only this once)."""

    subscription: SubscriptionView
    secret: str


@dataclass(frozen=True)
class RotatedSecret:
    """The new signing secret; the previous one also signs until `previous_expires_at`."""

    secret: str
    previous_expires_at: dt.datetime


@dataclass(frozen=True)
class DeliveryView:
    """One event's delivery to one subscription."""

    id: int
    event_id: str
    seq: int
    event_type: str
    task_id: int | None
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    created_at: dt.datetime


@dataclass(frozen=True)
class ReplayView:
    """A replay: the events `from_seq + 1..through_seq`, queued up to `next_seq` so far."""

    id: int
    subscription_id: int
    from_seq: int
    through_seq: int
    next_seq: int
    created_at: dt.datetime
    finished_at: dt.datetime | None

    @property
    def finished(self) -> bool:
        """True once every event of the replay is queued."""
        return self.finished_at is not None


@dataclass(frozen=True)
class Page(Generic[Item]):
    """One page of a list and the list's length."""

    items: list[Item]
    total: int
