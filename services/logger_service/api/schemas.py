"""What crosses the edge of the read API: query strings in, entries out."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.logger_service.service_layer.filters import SORT_FIELDS, TaskFilter, TaskOrder
from shared.ids import id_field
from shared.pagination import PageQuery
from shared.positions import min_seq_field
from shared.task_values import PRIORITIES, STATUSES

DAY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
INVALID_TASK_ID = "Invalid task_id, expected a positive integer"
INVALID_CREATED_BY = "Invalid created_by, expected a user id (a positive integer)"
INVALID_SORT = f"Invalid sort, expected one of {', '.join(SORT_FIELDS)}"
INVALID_ORDER = "Invalid order, expected asc or desc"
INVALID_DUE_RANGE = "Invalid due_from, it must not be after due_to"
Q_MAX = 200
INVALID_Q = f"Invalid q, expected 1 to {Q_MAX} characters of text to search for"


class Day(fields.Date):
    """A calendar day written exactly `YYYY-MM-DD`, its errors naming the parameter."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        message = f"Invalid {name} format, expected YYYY-MM-DD"
        super().__init__(error_messages={"invalid": message, "format": message}, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str) or not DAY_PATTERN.fullmatch(value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Choices(fields.Field):
    """One or more of a fixed set of values, comma-separated (`active,in_progress`)."""

    def __init__(self, name: str, values: tuple[str, ...], **kwargs: Any) -> None:
        self.values = values
        self.message = (f"Invalid {name}, expected one or more of {', '.join(values)} "
                        "(comma-separated)")
        metadata = {"description": f"One or more of {', '.join(values)}, comma-separated",
                    **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> tuple[str, ...]:
        chosen = tuple(part.strip() for part in str(value).split(","))
        if not all(part in self.values for part in chosen):
            raise ValidationError(self.message)
        return tuple(dict.fromkeys(chosen))


def _search_text() -> fields.String:
    return fields.String(
        validate=validate.Length(1, Q_MAX, error=INVALID_Q), error_messages={"invalid": INVALID_Q},
        metadata={"description": "Full-text search over title and description (web search "
                                 "syntax: words, \"a phrase\", `or`, `-word`)",
                  "example": "quarterly report"})


class ReadQuery(Schema):
    """What every read takes: `min_seq`, to see one's own write."""

    min_seq = min_seq_field()


class PagedReadQuery(PageQuery, ReadQuery):
    """A paginated read."""


class TaskFilterQuery(PagedReadQuery):
    """The filters every list of tasks takes: status, priority and text."""

    status = Choices("status", STATUSES, metadata={"example": "active,in_progress"})
    priority = Choices("priority", PRIORITIES, metadata={"example": "high"})
    q = _search_text()

    @staticmethod
    def task_filter(args: dict[str, Any]) -> TaskFilter:
        """The filter the parsed arguments describe."""
        return TaskFilter(statuses=args.get("status", ()), priorities=args.get("priority", ()),
                          created_by=args.get("created_by"), due_from=args.get("due_from"),
                          due_to=args.get("due_to"), text=args.get("q"))


class TasksQuery(TaskFilterQuery):
    """The TaskLogger's filters: `date`, and the status, priority and text of the entries."""

    date = Day("date", metadata={"description": "Only entries of this day (YYYY-MM-DD)",
                                 "example": "2025-04-05"})


class CurrentTasksQuery(TaskFilterQuery):
    """Filters and order of the current tasks."""

    created_by = id_field(INVALID_CREATED_BY, metadata={
        "description": "Only tasks this user created (a user id)", "example": 7})
    due_from = Day("due_from", metadata={"description": "Only tasks due on or after this day",
                                         "example": "2025-04-01"})
    due_to = Day("due_to", metadata={"description": "Only tasks due on or before this day",
                                     "example": "2025-04-30"})
    sort = fields.String(load_default="created_at", validate=validate.OneOf(
        SORT_FIELDS, error=INVALID_SORT), metadata={
        "description": "What to sort by (then by id); a task without a due date sorts as due "
                       "after every dated one", "example": "due_date"})
    order = fields.String(load_default="desc", validate=validate.OneOf(
        ("asc", "desc"), error=INVALID_ORDER), metadata={"example": "asc"})

    @validates_schema
    def due_range(self, data: dict[str, Any], **_kwargs: Any) -> None:
        """`due_from` must not be after `due_to`."""
        if data.get("due_from") and data.get("due_to") and data["due_from"] > data["due_to"]:
            raise ValidationError(INVALID_DUE_RANGE, "due_from")

    @staticmethod
    def task_order(args: dict[str, Any]) -> TaskOrder:
        """The order the parsed arguments ask for."""
        return TaskOrder(args["sort"], args["order"] == "desc")


class AuditQuery(PagedReadQuery):
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
