"""What crosses the task service's HTTP edge."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.task_service.domain.model import PRIORITIES, STATUSES, TITLE_MAX
from services.task_service.service_layer.feed import DEFAULT_LIMIT, MAX_LIMIT, MAX_WAIT
from services.task_service.service_layer.history import parse_point
from shared.pagination import PageQuery, bounded_integer
from shared.positions import min_seq_field

DESCRIPTION_MAX = 10_000


def _title(required: bool) -> fields.String:
    return fields.String(required=required, validate=validate.Length(1, TITLE_MAX),
                         metadata={"description": "1 to 200 characters",
                                   "example": "Write the quarterly report"})


def _description() -> fields.String:
    return fields.String(allow_none=True, validate=validate.Length(max=DESCRIPTION_MAX),
                         metadata={"example": "Figures from the finance export"})


def _due_date() -> fields.Date:
    return fields.Date(allow_none=True, format="%Y-%m-%d",
                       metadata={"description": "YYYY-MM-DD", "example": "2025-04-30"})


class TaskCreateSchema(Schema):
    """Body of `POST /task`."""

    title = _title(required=True)
    description = _description()
    status = fields.String(load_default="active", validate=validate.OneOf(STATUSES),
                           metadata={"example": "active"})
    priority = fields.String(load_default="medium", validate=validate.OneOf(PRIORITIES),
                             metadata={"example": "high"})
    due_date = _due_date()


class TaskUpdateSchema(Schema):
    """Body of `PUT /task/<id>`: any of the fields, at least one."""

    title = _title(required=False)
    description = _description()
    status = fields.String(validate=validate.OneOf(STATUSES), metadata={"example": "in_progress"})
    priority = fields.String(validate=validate.OneOf(PRIORITIES), metadata={"example": "high"})
    due_date = _due_date()

    @validates_schema
    def not_empty(self, data: dict[str, Any], **_kwargs: Any) -> None:
        """An update must name at least one field."""
        if not data:
            raise ValidationError("At least one field must be given")


class DeleteQuerySchema(Schema):
    """Query of `DELETE /task/<id>`."""

    purge = fields.Boolean(load_default=False, metadata={
        "description": "Remove for good (needs task:purge)", "example": False})


class MessageSchema(Schema):
    """A one-line confirmation."""

    message = fields.String(required=True, metadata={"example": "Task soft deleted successfully"})


class TransferRequestSchema(Schema):
    """Body of `POST /admin/transfer` (empty: today in the transfer time zone)."""

    date = fields.Date(format="%Y-%m-%d", metadata={
        "description": "YYYY-MM-DD; default: today in TRANSFER_TIMEZONE",
        "example": "2025-04-05"})


class TransferSchema(Schema):
    """The requested transfer."""

    date = fields.String(required=True, metadata={
        "description": "the transfer's date", "format": "date", "example": "2025-04-05"})
    event_id = fields.String(required=True, metadata={
        "description": "the id of this request's own DailyTransferRequested event",
        "format": "uuid", "example": "01960a3e-7b2c-7d4e-9f10-3a5b6c7d8e9f"})


class ImportSchema(Schema):
    """The result of a CSV import."""

    imported = fields.Integer(required=True, metadata={"example": 250})


INVALID_AS_OF = ("Invalid as_of, expected an ISO 8601 time (2025-04-05T17:32:00Z) or a "
                 "position of the event log (an integer from 0)")
INVALID_AFTER = "Invalid after, expected a position of the event log (an integer from 0)"
INVALID_LIMIT = f"Invalid limit, expected an integer from 1 to {MAX_LIMIT}"
INVALID_WAIT = f"Invalid wait, expected seconds from 0 to {MAX_WAIT:g}"


class AsOf(fields.Field):
    """A point of a task's history: an event position (digits) or an ISO 8601 time (one
    without an offset is UTC)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any
                     ) -> int | datetime:
        try:
            return parse_point(str(value))
        except ValueError:
            raise ValidationError(INVALID_AS_OF) from None


class HistoryQuery(PageQuery):
    """A page of a task's history; `min_seq` as every read takes it."""

    min_seq = min_seq_field()


class AsOfQuery(Schema):
    """The point of `GET /tasks/current/<id>?as_of=` (the gateway sends only these here)."""

    as_of = AsOf(required=True, error_messages={"required": INVALID_AS_OF}, metadata={
        "description": "The task as it was then: an ISO 8601 time (UTC when it has no offset) "
                       "or a position of the event log (an event's `seq`, a command's "
                       "`X-Event-Seq`); 404 if the task did not exist yet",
        "type": "string", "example": "2025-04-05T17:32:00Z"})
    min_seq = min_seq_field()


class FeedQuery(Schema):
    """Where the feed resumes, how much it answers and how long it may wait."""

    after = bounded_integer(INVALID_AFTER, 0, 2**63 - 1, load_default=0, metadata={
        "description": "The position to read after: 0 from the start, then the previous "
                       "answer's `next`", "example": 1041})
    limit = bounded_integer(INVALID_LIMIT, 1, MAX_LIMIT, load_default=DEFAULT_LIMIT, metadata={
        "description": f"At most this many events (default {DEFAULT_LIMIT})", "example": 100})
    wait = fields.Float(load_default=0.0, validate=validate.Range(0, MAX_WAIT, error=INVALID_WAIT),
                        error_messages={"invalid": INVALID_WAIT, "special": INVALID_WAIT},
                        metadata={"description": "When there is no event after `after`, wait "
                                                 f"up to this many seconds (at most "
                                                 f"{MAX_WAIT:g}) for one",
                                  "example": 20})


class ActorSchema(Schema):
    """Who caused an event."""

    id = fields.Integer(allow_none=True, metadata={"description": "User id (null for the "
                                                   "scheduler and the CLI)", "example": 1})
    username = fields.String(metadata={"example": "admin"})
    role = fields.String(metadata={"example": "admin"})


class EventSchema(Schema):
    """The contract's event envelope (docs/events.md describes each type's `data`)."""

    event_id = fields.String(required=True, metadata={
        "format": "uuid", "example": "01960a3e-7b2c-7d4e-9f10-3a5b6c7d8e9f"})
    seq = fields.Integer(required=True, metadata={
        "description": "Position in the event log: global, gap-free, in commit order",
        "format": "int64", "example": 1042})
    type = fields.String(required=True, metadata={"example": "TaskStatusChanged"})
    task_id = fields.Integer(allow_none=True, metadata={
        "description": "null for DailyTransferRequested", "format": "int64", "example": 3})
    version = fields.Integer(allow_none=True, metadata={
        "description": "The task's version this event made", "example": 4})
    occurred_at = fields.String(required=True, metadata={
        "format": "date-time", "example": "2025-04-05T17:32:00Z"})
    schema_version = fields.Integer(required=True, metadata={"example": 1})
    actor = fields.Nested(ActorSchema, allow_none=True, metadata={
        "example": {"id": 1, "username": "admin", "role": "admin"}})
    correlation_id = fields.String(allow_none=True, metadata={
        "description": "The X-Request-ID of the request that caused it", "example": "c0ffee-42"})
    data = fields.Dict(required=True, metadata={
        "description": "What changed (the type's own fields)",
        "example": {"previous_status": "in_progress", "new_status": "completed"}})


class FeedSchema(Schema):
    """A page of the feed."""

    events = fields.List(fields.Nested(EventSchema), required=True, metadata={
        "description": "The events after `after`, in seq order (empty: none yet)",
        "example": [{"event_id": "01960a3e-7b2c-7d4e-9f10-3a5b6c7d8e9f", "seq": 1042,
                     "type": "TaskStatusChanged", "task_id": 3, "version": 4,
                     "occurred_at": "2025-04-05T17:32:00Z", "schema_version": 1,
                     "actor": {"id": 1, "username": "admin", "role": "admin"},
                     "correlation_id": "c0ffee-42",
                     "data": {"previous_status": "in_progress", "new_status": "completed"}}]})
    next = fields.Integer(required=True, metadata={
        "description": "Pass as `after` next time", "format": "int64", "example": 1042})
