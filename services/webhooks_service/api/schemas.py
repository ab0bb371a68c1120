"""What crosses the edge of the subscriptions API."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.webhooks_service.service_layer.attempts import DELIVERED, FAILED, PENDING
from shared.events import EVENT_TYPES
from shared.pagination import PageQuery

STATUSES = (PENDING, DELIVERED, FAILED)
URL_EXAMPLE = "https://hooks.example.com/taskstream"
SECRET_EXAMPLE = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TIME_EXAMPLE = "2025-04-05T17:32:00.120000Z"


def event_types_field(**kwargs: Any) -> fields.List:
    """The event types a subscription wants (none given: every type)."""
    return fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)), allow_none=True,
        validate=validate.Length(min=1, error="Give at least one type, or none for all."),
        metadata={"description": f"Some of {', '.join(EVENT_TYPES)}; null or absent: all",
                  "example": ["TaskCreated", "TaskStatusChanged"]}, **kwargs)


def description_field() -> fields.String:
    """What the subscription is for, in the administrator's words."""
    return fields.String(validate=validate.Length(max=500), allow_none=True,
                         metadata={"example": "Notify the support channel"})


class SubscriptionCreateSchema(Schema):
    """A new subscription."""

    url = fields.String(required=True, validate=validate.Length(min=1, max=2000), metadata={
        "description": "Where events are POSTed (https only in production)",
        "example": URL_EXAMPLE})
    event_types = event_types_field()
    description = description_field()


class SubscriptionPatchSchema(Schema):
    """A change to a subscription."""

    url = fields.String(validate=validate.Length(min=1, max=2000),
                        metadata={"example": URL_EXAMPLE})
    event_types = event_types_field()
    description = description_field()
    paused = fields.Boolean(metadata={
        "description": "true stops deliveries (events are still queued); false resumes them",
        "example": False})

    @validates_schema
    def not_empty(self, data: dict[str, Any], **_kwargs: Any) -> None:
        """Refuse a patch that changes nothing."""
        if not data:
            raise ValidationError("Give 'url', 'event_types', 'description' or 'paused'.")


class SubscriptionSchema(Schema):
    """A subscription (its secret is shown only when it is made or rotated)."""

    id = fields.Integer(required=True, metadata={"format": "int64", "example": 7})
    url = fields.String(required=True, metadata={"example": URL_EXAMPLE})
    description = fields.String(allow_none=True,
                                metadata={"example": "Notify the support channel"})
    event_types = fields.List(fields.String(), allow_none=True, metadata={
        "description": "null: every type", "example": ["TaskCreated", "TaskStatusChanged"]})
    paused = fields.Boolean(required=True, metadata={"example": False})
    paused_reason = fields.String(allow_none=True, metadata={
        "description": "Why deliveries are paused (by an administrator, or after failing "
                       "for the whole retry window)",
        "example": None})
    created_at = fields.DateTime(required=True, metadata={"example": TIME_EXAMPLE})
    updated_at = fields.DateTime(required=True, metadata={"example": TIME_EXAMPLE})


class NewSubscriptionSchema(SubscriptionSchema):
    """A subscription just made, with its signing secret."""

    secret = fields.String(required=True, metadata={
        "description": "The Standard Webhooks signing secret; shown only now",
        "example": SECRET_EXAMPLE})


class RotatedSecretSchema(Schema):
    """The new signing secret; the previous one signs too until it expires."""

    secret = fields.String(required=True, metadata={"example": SECRET_EXAMPLE})
    previous_secret_expires_at = fields.DateTime(
        required=True, attribute="previous_expires_at", metadata={
            "description": "Until then deliveries carry a signature by each secret",
            "example": TIME_EXAMPLE})


class DeliveriesQuery(PageQuery):
    """Optional `status` filter of the deliveries."""

    status = fields.String(validate=validate.OneOf(STATUSES), metadata={
        "description": "Only deliveries in this state", "example": "failed"})


class DeliverySchema(Schema):
    """One event's delivery to a subscription."""

    id = fields.Integer(required=True, metadata={"format": "int64", "example": 1042})
    event_id = fields.String(required=True, metadata={
        "description": "Sent as `webhook-id`",
        "example": "0190f1c2-6d1e-7000-8000-00000000a1b2"})
    seq = fields.Integer(required=True, metadata={"format": "int64", "example": 1042})
    event_type = fields.String(required=True, metadata={"example": "TaskStatusChanged"})
    task_id = fields.Integer(allow_none=True, metadata={"format": "int64", "example": 42})
    status = fields.String(required=True, metadata={"enum": list(STATUSES),
                                                    "example": "failed"})
    attempts = fields.Integer(required=True, metadata={"example": 31})
    last_status_code = fields.Integer(allow_none=True, metadata={
        "description": "The receiver's last HTTP status (null: no answer)", "example": 503})
    last_error = fields.String(allow_none=True, metadata={
        "example": "HTTP 503 Service Unavailable"})
    last_attempt_at = fields.DateTime(allow_none=True, metadata={"example": TIME_EXAMPLE})
    delivered_at = fields.DateTime(allow_none=True, metadata={"example": None})
    created_at = fields.DateTime(required=True, metadata={"example": TIME_EXAMPLE})


class ReplayRequestSchema(Schema):
    """Where a replay starts."""

    from_seq = fields.Integer(required=True, validate=validate.Range(min=0), metadata={
        "description": "Every wanted event with a higher `seq` is delivered again",
        "format": "int64", "example": 1000})


class ReplaySchema(Schema):
    """A replay being queued by the `webhooks` process."""

    id = fields.Integer(required=True, metadata={"format": "int64", "example": 3})
    from_seq = fields.Integer(required=True, metadata={"format": "int64", "example": 1000})
    through_seq = fields.Integer(required=True, metadata={
        "description": "The last event it replays; later ones are delivered as usual",
        "format": "int64", "example": 1042})
    finished = fields.Boolean(required=True, metadata={
        "description": "Every event of it is queued", "example": False})
