"""The public API reference: the services' OpenAPI documents merged, and its Markdown form."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from services.api_gateway.service_layer.routing import public_operations

GATEWAY_PATHS: dict[str, Any] = {
    "/healthz": {"get": {
        "summary": "Liveness: the gateway process answers.", "tags": ["ops"],
        "responses": {"200": {"description": "OK"}},
    }},
    "/readyz": {"get": {
        "summary": "Readiness: Redis and every upstream service answer.", "tags": ["ops"],
        "responses": {"200": {"description": "Ready"},
                      "503": {"description": "A dependency is unavailable"}},
    }},
    "/openapi.json": {"get": {
        "summary": "This OpenAPI document.", "tags": ["ops"],
        "responses": {"200": {"description": "The document"}},
    }},
    "/docs": {"get": {
        "summary": "The API reference as a page.", "tags": ["ops"],
        "responses": {"200": {"description": "HTML"}},
    }},
}

GATEWAY_ERRORS = {
    "429": {"description": "Rate limit exceeded: "
            "`{\"error\": \"Too many requests, please try again later.\"}` with `Retry-After`"},
    "502": {"description": "Bad response from the upstream service"},
    "503": {"description": "The upstream service is unavailable"},
    "504": {"description": "The upstream service timed out"},
}


def merge_specs(specs: Mapping[str, Mapping[str, Any]], title: str = "Taskstream API"
                ) -> dict[str, Any]:
    """Merge the services' documents into one, keeping only what the gateway forwards."""
    allowed = public_operations()
    merged: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": title, "version": "1.0", "description": (
            "The public API of Taskstream, served by the gateway. Errors are always "
            "`{\"error\": \"...\", \"details\": ...}`; every response carries `X-Request-ID`.")},
        "paths": copy.deepcopy(GATEWAY_PATHS),
        "components": {"schemas": {}, "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }
    for service in sorted(specs):
        _merge_one(merged, specs[service], allowed)
    merged["paths"] = dict(sorted(merged["paths"].items()))
    for kind, entries in merged["components"].items():
        merged["components"][kind] = dict(sorted(entries.items()))
    return merged


def _merge_one(merged: dict[str, Any], spec: Mapping[str, Any], allowed: set) -> None:
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            if (path, method) not in allowed:
                continue
            operation = copy.deepcopy(operation)
            operation.setdefault("responses", {}).update(copy.deepcopy(GATEWAY_ERRORS))
            merged["paths"].setdefault(path, {})[method] = operation
    for kind, entries in spec.get("components", {}).items():
        if kind != "securitySchemes":
            merged["components"].setdefault(kind, {}).update(copy.deepcopy(entries))


def render_markdown(spec: Mapping[str, Any]) -> str:
    """Render the reference as Markdown (docs/api.md and the /docs page)."""
    lines = [f"# {spec['info']['title']}", "", spec["info"].get("description", ""), "",
             "Generated from the gateway's `/openapi.json` by `taskstream docs generate`; "
             "do not edit by hand.", "", "| method | path | summary | permission |",
             "|---|---|---|---|"]
    for path, method, operation in _operations(spec):
        lines.append(f"| {method.upper()} | `{path}` | {operation.get('summary', '')} | "
                     f"{_permission(operation)} |")
    responses = spec.get("components", {}).get("responses", {})
    for path, method, operation in _operations(spec):
        lines += _operation_section(path, method, operation, responses)
    lines += ["", "## Schemas", ""]
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        lines += [f"### {name}", "", "```json", json.dumps(schema, indent=2), "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def _operations(spec: Mapping[str, Any]) -> list[tuple[str, str, dict]]:
    return [(path, method, op) for path, ops in spec["paths"].items()
            for method, op in ops.items() if isinstance(op, dict)]


def _permission(operation: Mapping[str, Any]) -> str:
    permission = operation.get("x-permission")
    if permission:
        return f"`{permission}`"
    return "token" if operation.get("security") else "none"


def _operation_section(path: str, method: str, operation: Mapping[str, Any],
                       shared_responses: Mapping[str, Any]) -> list[str]:
    lines = ["", f"## {method.upper()} {path}", "", operation.get("summary", ""), ""]
    if operation.get("description"):
        lines += [operation["description"].strip(), ""]
    lines.append(f"Permission: {_permission(operation)}")
    for parameter in operation.get("parameters", []):
        lines.append(f"- parameter `{parameter['name']}` ({parameter.get('in')})"
                     f"{' required' if parameter.get('required') else ''}")
    body = operation.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        lines.append(f"- body `{media}`: {_schema_name(content.get('schema', {}))}")
    lines += ["", "| status | meaning |", "|---|---|"]
    for status, response in sorted(operation.get("responses", {}).items()):
        if "$ref" in response:
            response = shared_responses.get(str(response["$ref"]).rsplit("/", 1)[-1], {})
        described = response.get("description", "")
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        suffix = f" ({_schema_name(schema)})" if schema else ""
        lines.append(f"| {status} | {described}{suffix} |")
    return lines


def _schema_name(schema: Mapping[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if schema.get("type") == "array" and "items" in schema:
        return f"array of {_schema_name(schema['items'])}"
    return str(schema.get("type", "object"))
