"""Reads of the event store: a task's history, a task as it was (`as_of`), and the sync feed
`GET /events` over the whole log."""

from __future__ import annotations

from typing import Any

from flask import Response

from services.task_service.api.deps import deps
from services.task_service.api.schemas import (
    AsOfQuery,
    EventSchema,
    FeedQuery,
    FeedSchema,
    HistoryQuery,
)
from services.task_service.service_layer import feed, history
from shared.auth import requires
from shared.errors import ApiError
from shared.etags import versioned
from shared.headers import response_headers
from shared.http import documents_errors, permission_doc
from shared.pagination import pagination_headers
from shared.query_strings import QueryBlueprint
from shared.task_schema import TaskSchema

blp = QueryBlueprint("event_reads", __name__,
                     description="Task histories and the event feed (the event store)")
TASK_ID = [{"in": "path", "name": "task_id", "description": "The task's `id`"}]
NOT_YET_CREATED = "Task did not exist yet at that point"


@blp.route("/tasks/current/<id:task_id>/history", methods=["GET"], parameters=TASK_ID)
@requires("task:read")
@blp.doc(**permission_doc("task:read"))
@blp.arguments(HistoryQuery(), location="query")
@blp.response(200, EventSchema(many=True), headers=response_headers("X-Total-Count", "Link"))
@documents_errors(blp, 400, 401, 403, 404)
def task_history(args: dict[str, Any], task_id: int) -> Response:
    """List a task's events, oldest first (a deleted task is a 404)."""
    deps().applied.wait_for(args.get("min_seq"))
    found = history.history(deps().history, task_id, args["page"], args["per_page"])
    return Response(found.json(), mimetype="application/json",
                    headers=pagination_headers(found.page, found.per_page, found.total))


@blp.route("/tasks/current/<id:task_id>", methods=["GET"], parameters=TASK_ID)
@blp.request_headers("If-None-Match")
@requires("task:read")
@blp.doc(**permission_doc("task:read"), description=(
    "With `as_of`, the gateway asks the task service: the task as it was at that time or "
    "position, folded from its events up to there; 404 if it did not exist yet."))
@blp.arguments(AsOfQuery(), location="query")
@blp.response(200, TaskSchema, headers=response_headers("ETag"))
@documents_errors(blp, 400, 401, 403, 404)
def task_as_of(args: dict[str, Any], task_id: int) -> Any:
    """Get a task as it was at a time or a position of the event log."""
    deps().applied.wait_for(args.get("min_seq"))
    try:
        task = history.task_at(deps().history, task_id, args["as_of"])
    except history.NotYetCreated:
        raise ApiError(404, NOT_YET_CREATED) from None
    return versioned(task, task["version"])


@blp.route("/events", methods=["GET"])
@requires("events:read")
@blp.doc(**permission_doc("events:read"))
@blp.arguments(FeedQuery(), location="query")
@blp.response(200, FeedSchema)
@documents_errors(blp, 400, 401, 403)
def event_feed(args: dict[str, Any]) -> Response:
    """Read the event log after a position, in order (long-polls with `wait`)."""
    page = feed.read_feed(deps().log, args["after"], args["limit"], args["wait"],
                          deps().feed_slots)
    return Response(page.json(), mimetype="application/json")
