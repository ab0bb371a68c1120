"""Use cases of the subscriptions API: make, list, change, delete, rotate, deliveries, replay.

Each runs in one transaction of a `SubscriptionStore` (see `adapters.subscriptions`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from services.webhooks_service.service_layer.attempts import FAILED
from services.webhooks_service.service_layer.signing import new_secret
from services.webhooks_service.service_layer.targets import check_url
from services.webhooks_service.service_layer.views import (
    DeliveryView,
    NewSubscription,
    Page,
    ReplayView,
    RotatedSecret,
    SubscriptionView,
)

Found = TypeVar("Found")


class SubscriptionNotFound(LookupError):
    """No subscription has that id."""


class DeliveryNotFound(LookupError):
    """The subscription has no delivery with that id."""


class NotResendable(ValueError):
    """Only a delivery that was given up (failed) can be sent again."""


class SubscriptionStore(Protocol):
    """The subscriptions and their deliveries, inside one transaction."""

    def checkpoint(self) -> int: ...
    def add(self, values: Mapping[str, Any], secret: str, start_seq: int
            ) -> SubscriptionView: ...
    def page(self, offset: int, limit: int) -> Page[SubscriptionView]: ...
    def get(self, subscription_id: int) -> SubscriptionView | None: ...
    def change(self, subscription_id: int, values: Mapping[str, Any]
               ) -> SubscriptionView | None: ...
    def remove(self, subscription_id: int) -> bool: ...
    def rotate(self, subscription_id: int, secret: str, grace_seconds: int
               ) -> RotatedSecret | None: ...
    def deliveries(self, subscription_id: int, status: str | None, offset: int, limit: int
                   ) -> Page[DeliveryView]: ...
    def delivery(self, subscription_id: int, delivery_id: int) -> DeliveryView | None: ...
    def resend(self, subscription_id: int, delivery_id: int) -> DeliveryView: ...
    def add_replay(self, subscription_id: int, from_seq: int, through_seq: int
                   ) -> ReplayView: ...


Transaction = Callable[[], AbstractContextManager[SubscriptionStore]]


@dataclass(frozen=True)
class TargetRules:
    """What a target URL must be: `https` only (production), private hosts allowed (tests)."""

    https_only: bool = False
    allow_private: bool = False

    def checked(self, url: str) -> str:
        """The URL, or InvalidTarget."""
        return check_url(url, https_only=self.https_only, allow_private=self.allow_private)


def create(transaction: Transaction, rules: TargetRules, values: Mapping[str, Any]
           ) -> NewSubscription:
    """Make a subscription to the events after the log's current end, with a new secret."""
    secret = new_secret()
    checked = dict(values, url=rules.checked(values["url"]))
    with transaction() as store:
        return NewSubscription(store.add(checked, secret, store.checkpoint()), secret)


def list_page(transaction: Transaction, page: int, per_page: int) -> Page[SubscriptionView]:
    """One page of the subscriptions, by id."""
    with transaction() as store:
        return store.page((page - 1) * per_page, per_page)


def get(transaction: Transaction, subscription_id: int) -> SubscriptionView:
    """One subscription."""
    with transaction() as store:
        return _found(store.get(subscription_id))


def update(transaction: Transaction, rules: TargetRules, subscription_id: int,
           values: Mapping[str, Any]) -> SubscriptionView:
    """Change the URL, event types, description or `paused` (resuming clears the reason)."""
    changes = dict(values)
    if "url" in changes:
        changes["url"] = rules.checked(changes["url"])
    if "paused" in changes:
        changes["paused_reason"] = "paused by an administrator" if changes["paused"] else None
    with transaction() as store:
        return _found(store.change(subscription_id, changes))


def delete(transaction: Transaction, subscription_id: int) -> None:
    """Delete a subscription with its deliveries."""
    with transaction() as store:
        if not store.remove(subscription_id):
            raise SubscriptionNotFound(subscription_id)


def rotate_secret(transaction: Transaction, subscription_id: int, grace_seconds: int
                  ) -> RotatedSecret:
    """A new secret; the current one keeps signing for `grace_seconds` more."""
    with transaction() as store:
        return _found(store.rotate(subscription_id, new_secret(), grace_seconds))


def deliveries(transaction: Transaction, subscription_id: int, status: str | None, page: int,
               per_page: int) -> Page[DeliveryView]:
    """One page of a subscription's deliveries, newest first."""
    with transaction() as store:
        _found(store.get(subscription_id))
        return store.deliveries(subscription_id, status, (page - 1) * per_page, per_page)


def resend(transaction: Transaction, subscription_id: int, delivery_id: int) -> DeliveryView:
    """Queue a failed delivery again, in its place before the task's later events."""
    with transaction() as store:
        found = store.delivery(subscription_id, delivery_id)
        if found is None:
            raise DeliveryNotFound(delivery_id)
        if found.status != FAILED:
            raise NotResendable(delivery_id)
        return store.resend(subscription_id, delivery_id)


def replay(transaction: Transaction, subscription_id: int, from_seq: int) -> ReplayView:
    """Deliver again every wanted event after `from_seq` that is queued already; the
    `webhooks` process queues them (later ones it delivers anyway)."""
    with transaction() as store:
        _found(store.get(subscription_id))
        return store.add_replay(subscription_id, from_seq, store.checkpoint())


def _found(value: Found | None) -> Found:
    """The value, unless the subscription was not there."""
    if value is None:
        raise SubscriptionNotFound()
    return value
