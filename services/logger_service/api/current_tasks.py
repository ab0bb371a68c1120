"""The current tasks: `GET /tasks/current` (filtered, sorted pages) and
`GET /tasks/current/<task_id>` (one task with its ETag), from the read side's replica."""

from __future__ import annotations

from typing import Any

from flask import Response

from services.logger_service.api.deps import deps
from services.logger_service.api.pagination import pagination_headers
from services.logger_service.api.schemas import CurrentTasksQuery, ReadQuery
from services.logger_service.service_layer import current_tasks
from shared.auth import requires
from shared.errors import ApiError
from shared.etags import versioned
from shared.headers import response_headers
from shared.http import documents_errors, permission_doc
from shared.query_strings import QueryBlueprint
from shared.task_schema import TaskSchema

blp = QueryBlueprint("current_tasks", __name__,
                     description="Current tasks: every task as it is now (the read side)")

TASK_NOT_FOUND = "Task not found"
TASK_ID = [{"in": "path", "name": "task_id", "description": "The task's `id`"}]


@blp.route("/tasks/current", methods=["GET"])
@requires("task:read")
@blp.doc(**permission_doc("task:read"))
@blp.arguments(CurrentTasksQuery(), location="query")
@blp.response(200, TaskSchema(many=True), headers=response_headers("X-Total-Count", "Link"))
@documents_errors(blp, 400, 401, 403)
def list_current_tasks(args: dict[str, Any]) -> Response:
    """List the tasks as they are now: filtered, searched and sorted (deleted ones never)."""
    deps().applied.wait_for(args.get("min_seq"))
    result = current_tasks.list_tasks(
        deps().reader, CurrentTasksQuery.task_filter(args), CurrentTasksQuery.task_order(args),
        args["page"], args["per_page"])
    # The rows are already JSON-ready in the schema's shape (see GET /tasks).
    return Response(result.items_json(), mimetype="application/json",
                    headers=pagination_headers(result))


@blp.route("/tasks/current/<id:task_id>", methods=["GET"], parameters=TASK_ID)
@blp.request_headers("If-None-Match")
@requires("task:read")
@blp.doc(**permission_doc("task:read"))
@blp.arguments(ReadQuery(), location="query")
@blp.response(200, TaskSchema, headers=response_headers("ETag"))
@blp.alt_response(304, description="Not modified: `If-None-Match` names the current version",
                  headers=response_headers("ETag"))
@documents_errors(blp, 400, 401, 403, 404)
def get_current_task(args: dict[str, Any], task_id: int) -> Any:
    """Get a task as it is now, with its `ETag` (a deleted task is a 404)."""
    deps().applied.wait_for(args.get("min_seq"))
    try:
        task = current_tasks.get_task(deps().reader, task_id)
    except current_tasks.TaskNotFound:
        raise ApiError(404, TASK_NOT_FOUND) from None
    return versioned(task, task["version"])
