"""Task commands over HTTP: `POST /task`, `PUT /task/<id>`, `DELETE /task/<id>`."""

from __future__ import annotations

from typing import Any

from services.task_service.api.deps import deps
from services.task_service.api.request_context import (
    command_context,
    expected_version,
    idempotent_request,
    require_permission,
    task_headers,
)
from services.task_service.api.schemas import (
    DeleteQuerySchema,
    MessageSchema,
    TaskCreateSchema,
    TaskUpdateSchema,
)
from services.task_service.domain.model import CreateTask, DeleteTask, UpdateTask
from services.task_service.service_layer import tasks as commands
from shared.auth import requires
from shared.headers import response_headers
from shared.http import Blueprint, documents_errors, permission_doc
from shared.positions import position_headers
from shared.task_schema import TaskSchema

blp = Blueprint("tasks", __name__, description="Task commands (the write side)")
TASK_ID = [{"in": "path", "name": "task_id", "description": "The task's `id`"}]


@blp.route("/task", methods=["POST"])
@blp.request_headers("Idempotency-Key")
@blp.doc(**permission_doc("task:create"))
@documents_errors(blp, 400, 401, 403, 422)
@requires("task:create")
@blp.arguments(TaskCreateSchema())
@blp.response(201, TaskSchema, description="The new task",
              headers=response_headers("Location", "ETag", "X-Event-Seq"))
def create_task(args: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Create a task (send `Idempotency-Key` to make retries safe)."""
    done = commands.create_task(
        deps().uow(), CreateTask(**args), command_context(), idempotent_request(args)
    )
    return done.body, 201, task_headers(done, created=True)


@blp.route("/task/<id:task_id>", methods=["PUT"], parameters=TASK_ID)
@blp.request_headers("If-Match")
@blp.doc(**permission_doc("task:update"))
@documents_errors(blp, 400, 401, 403, 404, 412, 422)
@requires("task:update")
@blp.arguments(TaskUpdateSchema())
@blp.response(200, TaskSchema, description="The changed task",
              headers=response_headers("ETag", "X-Event-Seq"))
def update_task(args: dict[str, Any], task_id: int) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Change any fields of a task (send `If-Match` with its ETag to avoid lost updates)."""
    command = UpdateTask(task_id, args, expected_version())
    done = commands.update_task(deps().uow(), command, command_context())
    return done.body, 200, task_headers(done)


@blp.route("/task/<id:task_id>", methods=["DELETE"], parameters=TASK_ID)
@blp.request_headers("If-Match")
@blp.doc(**permission_doc("task:delete"))
@documents_errors(blp, 401, 403, 404, 412)
@requires("task:delete")
@blp.arguments(DeleteQuerySchema(), location="query")
@blp.response(200, MessageSchema, headers=response_headers("X-Event-Seq"))
def delete_task(args: dict[str, Any], task_id: int) -> tuple[dict[str, str], int, dict[str, str]]:
    """Soft-delete a task, or purge it with `?purge=true` (needs task:purge)."""
    if args["purge"]:
        require_permission("task:purge")
    command = DeleteTask(task_id, args["purge"], expected_version())
    done = commands.delete_task(deps().uow(), command, command_context())
    return done.body, 200, position_headers(done.position)
