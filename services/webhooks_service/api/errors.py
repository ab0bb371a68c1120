"""The subscriptions API's errors mapped to HTTP, in one place."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response

from services.webhooks_service.service_layer.subscriptions import (
    DeliveryNotFound,
    NotResendable,
    SubscriptionNotFound,
)
from services.webhooks_service.service_layer.targets import InvalidTarget
from shared.errors import error_response

WEBHOOK_NOT_FOUND = "Webhook not found"
DELIVERY_NOT_FOUND = "Delivery not found"
NOT_RESENDABLE = "Only a failed delivery can be re-sent"


def register_domain_errors(app: Flask) -> None:
    """Answer each error of the service layer with its status and body."""
    handlers: dict[type[Exception], tuple[int, str]] = {
        SubscriptionNotFound: (404, WEBHOOK_NOT_FOUND),
        DeliveryNotFound: (404, DELIVERY_NOT_FOUND),
        NotResendable: (409, NOT_RESENDABLE),
    }
    for exc_type, (status, message) in handlers.items():
        app.register_error_handler(exc_type, _answer(status, message))
    app.register_error_handler(InvalidTarget, _invalid_target)


def _answer(status: int, message: str) -> Callable[[Exception], Response]:
    def handle(_exc: Exception) -> Response:
        return error_response(status, message)

    return handle


def _invalid_target(exc: InvalidTarget) -> Response:
    """A refused URL is a validation error of the field `url`."""
    return error_response(422, f"Field 'url': {exc}", {"json": {"url": [str(exc)]}})
