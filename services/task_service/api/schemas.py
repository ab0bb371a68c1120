"""What crosses the task service's HTTP edge."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.task_service.domain.model import PRIORITIES, STATUSES, TITLE_MAX

DESCRIPTION_MAX = 10_000


def _title(required: bool) -> fields.String:
    return fields.String(required=required, validate=validate.Length(1, TITLE_MAX),
                         metadata={"description": "1 to 200 characters"})


class TaskCreateSchema(Schema):
    """Body of `POST /task`."""

    title = _title(required=True)
    description = fields.String(allow_none=True, validate=validate.Length(max=DESCRIPTION_MAX))
    status = fields.String(load_default="active", validate=validate.OneOf(STATUSES))
    priority = fields.String(load_default="medium", validate=validate.OneOf(PRIORITIES))
    due_date = fields.Date(allow_none=True, format="%Y-%m-%d",
                           metadata={"description": "YYYY-MM-DD"})


class TaskUpdateSchema(Schema):
    """Body of `PUT /task/<id>`: any of the fields, at least one."""

    title = _title(required=False)
    description = fields.String(allow_none=True, validate=validate.Length(max=DESCRIPTION_MAX))
    status = fields.String(validate=validate.OneOf(STATUSES))
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    due_date = fields.Date(allow_none=True, format="%Y-%m-%d")

    @validates_schema
    def not_empty(self, data: dict[str, Any], **_kwargs: Any) -> None:
        """An update must name at least one field."""
        if not data:
            raise ValidationError("At least one field must be given")


class TaskSchema(Schema):
    """A task, as every task command returns it."""

    id = fields.Integer(required=True)
    title = fields.String(required=True)
    description = fields.String(allow_none=True)
    status = fields.String(required=True, metadata={"enum": list(STATUSES)})
    priority = fields.String(required=True, metadata={"enum": list(PRIORITIES)})
    due_date = fields.String(allow_none=True, metadata={"format": "date"})
    created_by = fields.Integer(required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    updated_at = fields.String(required=True, metadata={"format": "date-time"})
    version = fields.Integer(required=True, metadata={"description": "Also sent as the ETag"})


class DeleteQuerySchema(Schema):
    """Query of `DELETE /task/<id>`."""

    purge = fields.Boolean(load_default=False,
                           metadata={"description": "Remove for good (needs task:purge)"})


class MessageSchema(Schema):
    """A one-line confirmation."""

    message = fields.String(required=True)


class TransferRequestSchema(Schema):
    """Body of `POST /admin/transfer` (empty: today in the transfer time zone)."""

    date = fields.Date(format="%Y-%m-%d", metadata={
        "description": "YYYY-MM-DD; default: today in TRANSFER_TIMEZONE"})


class TransferSchema(Schema):
    """The requested transfer."""

    date = fields.String(required=True, metadata={"description": "the transfer's date"})
    event_id = fields.String(required=True, metadata={
        "description": "the id of this request's own DailyTransferRequested event"})


class ImportSchema(Schema):
    """The result of a CSV import."""

    imported = fields.Integer(required=True)
