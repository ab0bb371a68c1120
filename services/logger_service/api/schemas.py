"""What crosses the edge of the read API: query strings in, entries out."""

from __future__ import annotations

import re
from typing import Any, NoReturn

from marshmallow import Schema, fields

from shared.errors import ApiError
from shared.http import Blueprint, JsonObjectParser
from shared.ids import id_field
from shared.pagination import PageQuery

DAY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
INVALID_DATE = "Invalid date format, expected YYYY-MM-DD"
INVALID_TASK_ID = "Invalid task_id, expected a positive integer"


class QueryParser(JsonObjectParser):
    """Parses query strings; a bad value is a 400 with the first problem as the message."""

    DEFAULT_VALIDATION_STATUS = 400

    def handle_error(self, error: Any, req: Any, schema: Any, *, error_status_code: Any,
                     error_headers: Any) -> NoReturn:
        """Raise the contract's 400."""
        messages = error.normalized_messages()
        raise ApiError(400, _first_message(messages), messages.get("query", messages))


def _first_message(messages: Any) -> str:
    """The first message in marshmallow's nested messages."""
    while isinstance(messages, dict) and messages:
        messages = next(iter(messages.values()))
    if isinstance(messages, list) and messages:
        return _first_message(messages[0])
    return str(messages)


class QueryBlueprint(Blueprint):
    """A Blueprint whose bad query strings are 400s."""

    ARGUMENTS_PARSER = QueryParser()


class Day(fields.Date):
    """A calendar day written exactly `YYYY-MM-DD`."""

    default_error_messages = {"invalid": INVALID_DATE, "format": INVALID_DATE}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str) or not DAY_PATTERN.fullmatch(value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class TasksQuery(PageQuery):
    """Optional `date` filter of the TaskLogger."""

    date = Day(metadata={"description": "Only entries of this day (YYYY-MM-DD)",
                         "example": "2025-04-05"})


class AuditQuery(PageQuery):
    """Optional `task_id` filter of the audit."""

    task_id = id_field(INVALID_TASK_ID, metadata={"description": "Only this task",
                                                  "example": 42})


class TaskLogEntrySchema(Schema):
    """One task as it stood on one transfer date."""

    id = fields.Integer(required=True, metadata={
        "description": "The entry's id (for GET /task/{task_id})", "format": "int64",
        "example": 1234})
    task_id = fields.Integer(required=True, metadata={"format": "int64", "example": 42})
    title = fields.String(required=True, metadata={"example": "Write the quarterly report"})
    description = fields.String(allow_none=True,
                                metadata={"example": "Figures from the finance export"})
    status = fields.String(required=True, metadata={"example": "in_progress"})
    priority = fields.String(required=True, metadata={"example": "high"})
    date = fields.String(required=True, metadata={"format": "date", "example": "2025-04-05"})
    transferred_at = fields.String(required=True, metadata={
        "format": "date-time", "example": "2025-04-05T00:05:00.410000Z"})


class AuditEntrySchema(Schema):
    """One status change of a task."""

    task_id = fields.Integer(required=True, metadata={"format": "int64", "example": 42})
    previous_status = fields.String(allow_none=True, metadata={
        "description": "None for the task's first status", "example": "active"})
    new_status = fields.String(required=True, metadata={"example": "in_progress"})
    modified_by = fields.String(allow_none=True, metadata={"description": "Username",
                                                           "example": "ann"})
    timestamp = fields.String(required=True, metadata={
        "format": "date-time", "example": "2025-04-05T10:40:51.300000Z"})
