"""`/webhooks`: subscriptions, their deliveries and replays, for callers with `webhooks:manage`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from services.webhooks_service.api.deps import deps
from services.webhooks_service.api.schemas import (
    DeliveriesQuery,
    DeliverySchema,
    NewSubscriptionSchema,
    ReplayRequestSchema,
    ReplaySchema,
    RotatedSecretSchema,
    SubscriptionCreateSchema,
    SubscriptionPatchSchema,
    SubscriptionSchema,
)
from services.webhooks_service.service_layer import subscriptions as webhooks
from services.webhooks_service.service_layer.views import (
    DeliveryView,
    ReplayView,
    RotatedSecret,
    SubscriptionView,
)
from shared.auth import requires
from shared.headers import response_headers
from shared.http import Blueprint, documents_errors, permission_doc
from shared.pagination import PageQuery, pagination_headers

PERMISSION = "webhooks:manage"
WEBHOOK_ID = [{"in": "path", "name": "webhook_id", "description": "The subscription's `id`"}]
DELIVERY_ID = [*WEBHOOK_ID, {"in": "path", "name": "delivery_id",
                             "description": "The delivery's `id`"}]

blp = Blueprint("webhooks", __name__, url_prefix="/webhooks",
                description="Webhook subscriptions, deliveries and replays (webhooks:manage).")


@blp.route("", methods=["POST"])
@blp.doc(**permission_doc(PERMISSION))
@requires(PERMISSION)
@blp.arguments(SubscriptionCreateSchema())
@blp.response(201, NewSubscriptionSchema, headers=response_headers("Location"),
              description="The subscription and its signing secret (shown only now)")
@documents_errors(blp, 400, 401, 403, 422)
def create_webhook(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Subscribe a URL to the events committed from now on (all types, or those given)."""
    made = webhooks.create(deps().transaction, deps().rules, body)
    shown = {**asdict(made.subscription), "secret": made.secret}
    return shown, {"Location": f"/webhooks/{made.subscription.id}"}


@blp.route("", methods=["GET"])
@blp.doc(**permission_doc(PERMISSION))
@requires(PERMISSION)
@blp.arguments(PageQuery(), location="query", error_status_code=400)
@blp.response(200, SubscriptionSchema(many=True),
              headers=response_headers("X-Total-Count", "Link"))
@documents_errors(blp, 400, 401, 403)
def list_webhooks(query: dict[str, int]) -> tuple[list[SubscriptionView], dict[str, str]]:
    """List the subscriptions by id, one page at a time."""
    found = webhooks.list_page(deps().transaction, query["page"], query["per_page"])
    return found.items, pagination_headers(query["page"], query["per_page"], found.total)


@blp.route("/<id:webhook_id>", methods=["GET"], parameters=WEBHOOK_ID)
@blp.doc(**permission_doc(PERMISSION))
@requires(PERMISSION)
@blp.response(200, SubscriptionSchema)
@documents_errors(blp, 401, 403, 404)
def get_webhook(webhook_id: int) -> SubscriptionView:
    """One subscription (paused, and why)."""
    return webhooks.get(deps().transaction, webhook_id)


@blp.route("/<id:webhook_id>", methods=["PATCH"], parameters=WEBHOOK_ID)
@blp.doc(**permission_doc(PERMISSION))
@requires(PERMISSION)
@blp.arguments(SubscriptionPatchSchema())
@blp.response(200, SubscriptionSchema)
@documents_errors(blp, 400, 401, 403, 404, 422)
def update_webhook(body: dict[str, Any], webhook_id: int) -> SubscriptionView:
    """Change the URL, event types or description; pause or resume deliveries."""
    return webhooks.update(deps().transaction, deps().rules, webhook_id, body)


@blp.route("/<id:webhook_id>", methods=["DELETE"], parameters=WEBHOOK_ID)
@blp.doc(**permission_doc(PERMISSION))
@requires(PERMISSION)
@blp.response(204, description="Deleted, with its deliveries")
@documents_errors(blp, 401, 403, 404)
def delete_webhook(webhook_id: int) -> tuple[str, int]:
    """Delete a subscription and everything queued for it."""
    webhooks.delete(deps().transaction, webhook_id)
    return "", 204


@blp.route("/<id:webhook_id>/rotate-secret", methods=["POST"], parameters=WEBHOOK_ID)
@blp.doc(**permission_doc(PERMISSION))
@requires(PERMISSION)
@blp.response(200, RotatedSecretSchema)
@documents_errors(blp, 401, 403, 404)
def rotate_webhook_secret(webhook_id: int) -> RotatedSecret:
    """Make a new signing secret; the old one keeps signing too for a grace period."""
    return webhooks.rotate_secret(deps().transaction, webhook_id, deps().secret_grace_seconds)


@blp.route("/<id:webhook_id>/deliveries", methods=["GET"], parameters=WEBHOOK_ID)
@blp.doc(**permission_doc(PERMISSION))
@requires(PERMISSION)
@blp.arguments(DeliveriesQuery(), location="query", error_status_code=400)
@blp.response(200, DeliverySchema(many=True), headers=response_headers("X-Total-Count", "Link"))
@documents_errors(blp, 400, 401, 403, 404)
def list_webhook_deliveries(query: dict[str, Any], webhook_id: int
                            ) -> tuple[list[DeliveryView], dict[str, str]]:
    """List a subscription's deliveries, newest first: status, attempts, last answer."""
    found = webhooks.deliveries(deps().transaction, webhook_id, query.get("status"),
                                query["page"], query["per_page"])
    return found.items, pagination_headers(query["page"], query["per_page"], found.total)


@blp.route("/<id:webhook_id>/deliveries/<id:delivery_id>/resend", methods=["POST"],
           parameters=DELIVERY_ID)
@blp.doc(**permission_doc(PERMISSION))
@requires(PERMISSION)
@blp.response(202, DeliverySchema, description="Queued again")
@documents_errors(blp, 401, 403, 404, 409)
def resend_webhook_delivery(webhook_id: int, delivery_id: int) -> tuple[DeliveryView, int]:
    """Send a failed delivery again (before the task's events still pending)."""
    return webhooks.resend(deps().transaction, webhook_id, delivery_id), 202


@blp.route("/<id:webhook_id>/replay", methods=["POST"], parameters=WEBHOOK_ID)
@blp.doc(**permission_doc(PERMISSION))
@requires(PERMISSION)
@blp.arguments(ReplayRequestSchema())
@blp.response(202, ReplaySchema, description="Accepted: the events are being queued")
@documents_errors(blp, 400, 401, 403, 404, 422)
def replay_webhook(body: dict[str, int], webhook_id: int) -> tuple[ReplayView, int]:
    """Deliver again every wanted event after position `from_seq` of the event log."""
    return webhooks.replay(deps().transaction, webhook_id, body["from_seq"]), 202
