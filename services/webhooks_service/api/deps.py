"""The objects the subscriptions API's views use, built by create_app and kept on the app."""

from __future__ import annotations

from dataclasses import dataclass

from services.webhooks_service.service_layer.subscriptions import TargetRules, Transaction
from shared.http import provided


@dataclass(frozen=True)
class WebhookDeps:
    """What a request may need: a transaction, the target rules and the rotation's grace."""

    transaction: Transaction
    rules: TargetRules
    secret_grace_seconds: int


def deps() -> WebhookDeps:
    """The dependencies of the current app."""
    return provided(WebhookDeps)
