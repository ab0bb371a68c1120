"""A task as the API shows it, whichever service answers: the write side after a command,
the read side's current tasks, a task as it was at an earlier point of its history."""

from __future__ import annotations

from marshmallow import Schema, fields

from shared.task_values import PRIORITIES, STATUSES


class TaskSchema(Schema):
    """A task: `id`, its fields, who created it and when, and its version (the ETag)."""

    id = fields.Integer(required=True, metadata={"format": "int64", "example": 42})
    title = fields.String(required=True, metadata={"example": "Write the quarterly report"})
    description = fields.String(allow_none=True,
                                metadata={"example": "Figures from the finance export"})
    status = fields.String(required=True, metadata={"enum": list(STATUSES),
                                                    "example": "in_progress"})
    priority = fields.String(required=True, metadata={"enum": list(PRIORITIES),
                                                      "example": "high"})
    due_date = fields.String(allow_none=True, metadata={"format": "date",
                                                        "example": "2025-04-30"})
    created_by = fields.Integer(required=True, metadata={"description": "The creator's user id",
                                                         "format": "int64", "example": 7})
    created_at = fields.String(required=True, metadata={
        "format": "date-time", "example": "2025-04-05T09:12:03.120000Z"})
    updated_at = fields.String(required=True, metadata={
        "format": "date-time", "example": "2025-04-05T10:40:51.300000Z"})
    version = fields.Integer(required=True, metadata={"description": "Also sent as the ETag",
                                                      "example": 3})
