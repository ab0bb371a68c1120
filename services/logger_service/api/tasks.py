"""TaskLogger endpoints: `GET /tasks` (all days or one) and `GET /task/<id>`."""

from __future__ import annotations

from typing import Any

from flask import Response

from services.logger_service.api.deps import deps
from services.logger_service.api.pagination import pagination_headers
from services.logger_service.api.schemas import ReadQuery, TaskLogEntrySchema, TasksQuery
from services.logger_service.service_layer import queries
from shared.auth import requires
from shared.errors import ApiError
from shared.headers import response_headers
from shared.http import documents_errors, permission_doc
from shared.query_strings import QueryBlueprint

blp = QueryBlueprint("tasks", __name__, description="TaskLogger: tasks as transferred each day")

ENTRY_NOT_FOUND = "Task log entry not found"


@blp.route("/tasks", methods=["GET"])
@requires("task:read")
@blp.doc(**permission_doc("task:read"))
@blp.arguments(TasksQuery(), location="query")
@blp.response(200, TaskLogEntrySchema(many=True),
              headers=response_headers("X-Total-Count", "Link", "X-Cache"))
@documents_errors(blp, 400, 401, 403)
def list_tasks(args: dict[str, Any]) -> Any:
    """List TaskLogger entries, newest day first, or one day's (cached when unfiltered)."""
    found, filters = deps(), TasksQuery.task_filter(args)
    found.applied.wait_for(args.get("min_seq"))
    page, per_page, day = args["page"], args["per_page"], args.get("date")
    if day is None or not filters.empty:
        result = queries.list_entries(found.reader, page, per_page, day, filters)
    else:
        result = queries.list_day(found.reader, found.cache, day, page, per_page)
    # The rows are already JSON-ready in the schema's shape, and a cached page is kept as
    # JSON: a marshmallow dump of 100 entries would cost more than the whole hit.
    return Response(result.items_json(), mimetype="application/json",
                    headers=pagination_headers(result))


# One path template with the task service's PUT/DELETE /task/<task_id>, so the merged API
# document has one `/task/{task_id}`; for GET the number is a TaskLogger entry's `id`.
@blp.route("/task/<id:task_id>", methods=["GET"], parameters=[{
    "in": "path", "name": "task_id",
    "description": "The `id` of a TaskLogger entry (as listed by GET /tasks)",
}])
@requires("task:read")
@blp.doc(**permission_doc("task:read"))
@blp.arguments(ReadQuery(), location="query")
@blp.response(200, TaskLogEntrySchema)
@documents_errors(blp, 400, 401, 403, 404)
def get_task(args: dict[str, Any], task_id: int) -> Any:
    """Get one TaskLogger entry by its id."""
    deps().applied.wait_for(args.get("min_seq"))
    try:
        return queries.get_entry(deps().reader, task_id)
    except queries.EntryNotFound:
        raise ApiError(404, ENTRY_NOT_FOUND) from None
