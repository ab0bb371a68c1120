"""What crosses the task service's HTTP edge."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.task_service.domain.model import PRIORITIES, STATUSES, TITLE_MAX

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
