"""Merging the services' OpenAPI documents into the public reference."""

from __future__ import annotations

from services.api_gateway.service_layer.openapi import merge_specs, render_markdown
from services.api_gateway.service_layer.routing import openapi_path

TASKS_SPEC = {
    "paths": {
        "/task": {"post": {"summary": "Create a task.", "x-permission": "task:create",
                           "security": [{"bearerAuth": []}],
                           "responses": {"201": {"description": "Created"}}}},
        "/healthz": {"get": {"summary": "internal", "responses": {}}},
    },
    "components": {"schemas": {"Task": {"type": "object"}}},
}
LOGGER_SPEC = {
    "paths": {"/task/{task_id}": {"get": {"summary": "One TaskLogger entry.",
                                          "responses": {"200": {"description": "OK"}}}}},
    "components": {"schemas": {"TaskLogEntry": {"type": "object"}}},
}


def test_rule_becomes_openapi_path() -> None:
    assert openapi_path("/task/<int:task_id>") == "/task/{task_id}"
    assert openapi_path("/tasks") == "/tasks"


def test_merge_keeps_forwarded_operations_and_schemas_only() -> None:
    merged = merge_specs({"tasks": TASKS_SPEC, "logger": LOGGER_SPEC})
    assert "post" in merged["paths"]["/task"]
    assert "get" in merged["paths"]["/task/{task_id}"]
    assert merged["paths"]["/healthz"]["get"]["summary"].startswith("Liveness")
    assert set(merged["components"]["schemas"]) == {"Task", "TaskLogEntry"}


def test_merge_documents_gateway_errors_on_every_forwarded_operation() -> None:
    merged = merge_specs({"tasks": TASKS_SPEC})
    responses = merged["paths"]["/task"]["post"]["responses"]
    assert {"201", "429", "502", "503", "504"} <= set(responses)


def test_markdown_lists_every_operation_with_its_permission() -> None:
    text = render_markdown(merge_specs({"tasks": TASKS_SPEC, "logger": LOGGER_SPEC}))
    assert "| POST | `/task` | Create a task. | `task:create` |" in text
    assert "## GET /task/{task_id}" in text
    assert "### TaskLogEntry" in text
