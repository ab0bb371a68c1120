"""Merging the services' OpenAPI documents into the public reference."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_spec_validator import validate

from services.api_gateway.service_layer.openapi import merge_specs, render_markdown
from services.api_gateway.service_layer.routing import openapi_path
from tests.public_document import public_document

TASKS_SPEC = {
    "paths": {
        "/task": {"post": {"summary": "Create a task.", "x-permission": "task:create",
                           "security": [{"bearerAuth": []}],
                           "responses": {"201": {"description": "Created", "content": {
                               "application/json": {"schema": {
                                   "$ref": "#/components/schemas/Task"}}}}}}},
        "/healthz": {"get": {"summary": "internal", "responses": {}}},
    },
    "components": {"schemas": {"Task": {"type": "object"}, "Unused": {"type": "object"}}},
}
LOGGER_SPEC = {
    "paths": {"/task/{task_id}": {
        "parameters": [{"in": "path", "name": "task_id", "required": True,
                        "schema": {"type": "integer"}}],
        "get": {"summary": "One TaskLogger entry.", "responses": {"200": {
            "description": "OK", "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/TaskLogEntry"}}}}}}}},
    "components": {"schemas": {"TaskLogEntry": {"type": "object"}}},
}


def test_rule_becomes_openapi_path() -> None:
    assert openapi_path("/task/<int:task_id>") == "/task/{task_id}"
    assert openapi_path("/tasks") == "/tasks"


def test_merge_keeps_forwarded_operations_and_the_schemas_they_use() -> None:
    merged = merge_specs({"tasks": TASKS_SPEC, "logger": LOGGER_SPEC})
    assert "post" in merged["paths"]["/task"]
    assert "get" in merged["paths"]["/task/{task_id}"]
    assert merged["paths"]["/healthz"]["get"]["summary"].startswith("Liveness")
    assert set(merged["components"]["schemas"]) == {"Task", "TaskLogEntry", "Readiness"}


def test_path_item_parameters_move_onto_each_operation() -> None:
    """A path item may hold parameters for one service only: the merge keeps them per method."""
    operation = merge_specs({"logger": LOGGER_SPEC})["paths"]["/task/{task_id}"]["get"]
    assert operation["parameters"][0] == LOGGER_SPEC["paths"]["/task/{task_id}"]["parameters"][0]
    assert set(merge_specs({"logger": LOGGER_SPEC})["paths"]["/task/{task_id}"]) == {"get"}


def test_merge_documents_gateway_errors_on_every_forwarded_operation() -> None:
    merged = merge_specs({"tasks": TASKS_SPEC})
    responses = merged["paths"]["/task"]["post"]["responses"]
    assert {"201", "429", "502", "503", "504"} <= set(responses)


def test_markdown_lists_every_operation_with_its_permission() -> None:
    text = render_markdown(merge_specs({"tasks": TASKS_SPEC, "logger": LOGGER_SPEC}))
    assert "| POST | `/task` | Create a task. | `task:create` |" in text
    assert "## GET /task/{task_id}" in text
    assert "### TaskLogEntry" in text


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The public document built from the real services' documents."""
    return public_document()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, method, operation) of every operation."""
    return [(path, method, operation) for path, item in document["paths"].items()
            for method, operation in item.items()]


def resolved(document: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    """`value`, or the component it refers to."""
    if "$ref" not in value:
        return value
    _, _, kind, name = value["$ref"].split("/")
    return document["components"][kind][name]  # type: ignore[no-any-return]


def test_the_public_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)


def test_every_operation_has_a_unique_operation_id_and_its_path_parameters(
        document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _path, _method, operation in operations(document)]
    assert len(ids) == len(set(ids)) == len(operations(document))
    for path, _method, operation in operations(document):
        declared = {p["name"] for p in map(lambda p: resolved(document, p),
                                           operation.get("parameters", [])) if p["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", path)), path


def header_names(document: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    """The request headers an operation declares."""
    parameters = [resolved(document, p) for p in operation.get("parameters", [])]
    return {p["name"] for p in parameters if p["in"] == "header"}


def test_request_headers_are_declared(document: dict[str, Any]) -> None:
    paths = document["paths"]
    for method in ("put", "delete"):
        assert "If-Match" in header_names(document, paths["/task/{task_id}"][method])
    for path in ("/task", "/upload-csv"):
        assert "Idempotency-Key" in header_names(document, paths[path]["post"])
    for path, method, operation in operations(document):
        assert "X-Request-ID" in header_names(document, operation), (path, method)


@pytest.mark.parametrize("path, method, status, headers", [
    ("/task", "post", "201", {"Location", "ETag"}),
    ("/task/{task_id}", "put", "200", {"ETag"}),
    ("/tasks", "get", "200", {"X-Total-Count", "Link", "X-Cache"}),
    ("/audit", "get", "200", {"X-Total-Count", "Link"}),
    ("/auth/users", "get", "200", {"X-Total-Count", "Link"}),
    ("/auth/users", "post", "201", {"Location"}),
    ("/task", "post", "429", {"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                              "X-RateLimit-Reset"}),
    ("/task", "post", "503", {"Retry-After"}),
    ("/tasks", "get", "200", {"X-RateLimit-Limit", "X-RateLimit-Remaining",
                              "X-RateLimit-Reset"}),
])
def test_response_headers_are_declared(document: dict[str, Any], path: str, method: str,
                                       status: str, headers: set[str]) -> None:
    declared = document["paths"][path][method]["responses"][status]["headers"]
    assert headers <= set(declared)
    for name in declared:
        assert resolved(document, declared[name])["description"]


def test_every_response_carries_a_request_id(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            assert "X-Request-ID" in resolved(document, response)["headers"], (
                path, method, status)


def has_example(document: dict[str, Any], schema: dict[str, Any]) -> bool:
    """Whether a schema gives an example, itself or through every property or item."""
    schema = resolved(document, schema)
    if "example" in schema:
        return True
    if schema.get("type") == "array":
        return has_example(document, schema["items"])
    properties = schema.get("properties", {})
    return bool(properties) and all(has_example(document, p) for p in properties.values())


def examples_of(document: dict[str, Any], operation: dict[str, Any]) -> list[bool]:
    """For the request body and each response with a body: does it give an example?"""
    bodies = [operation["requestBody"]] if "requestBody" in operation else []
    bodies += [resolved(document, r) for r in operation["responses"].values()]
    return [any("example" in media or has_example(document, media.get("schema", {}))
                for media in body["content"].values())
            for body in bodies if "content" in body]


def test_every_operation_has_examples_of_its_request_and_responses(
        document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        found = examples_of(document, operation)
        assert found and all(found), (path, method, found)


def test_an_operation_two_services_answer_is_documented_once_with_both_parts() -> None:
    """`GET /tasks/current/{task_id}`: the logger's now, the task service's `as_of`."""
    path = "/tasks/current/{task_id}"

    def spec(description: str, parameter: str, status: str) -> dict[str, Any]:
        return {"paths": {path: {"get": {
            "summary": description, "description": description, "responses": {
                status: {"description": status}},
            "parameters": [
                {"in": "path", "name": "task_id", "required": True, "example": 1},
                {"in": "query", "name": parameter, "required": True, "example": 1}]}}}}

    merged = merge_specs({"logger": spec("now", "min_seq", "304"),
                          "tasks": spec("then", "as_of", "404")})
    operation = merged["paths"][path]["get"]
    assert (operation["summary"], operation["description"]) == ("now", "now\n\nthen")
    parameters = {p["name"]: p.get("required") for p in operation["parameters"] if "name" in p}
    assert parameters == {"task_id": True, "min_seq": True, "as_of": False}
    assert {"304", "404", "429", "503"} <= set(operation["responses"])
