"""The public API reference: the services' OpenAPI documents merged, and its Markdown form."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

from services.api_gateway.service_layer.routing import public_operations
from shared.headers import REQUEST_HEADERS, RESPONSE_HEADERS
from shared.http import MAX_JSON_DEPTH

READINESS_SCHEMA = {"type": "object", "properties": {
    "status": {"type": "string", "enum": ["ready", "unavailable"]},
    "checks": {"type": "object", "additionalProperties": {
        "type": "string", "enum": ["ok", "error"]},
        "description": "`ok` or `error` for each dependency (the reason is in the log)"}}}
_READINESS = {"$ref": "#/components/schemas/Readiness"}

_JSON_OBJECT = {"type": "object", "additionalProperties": True}


def _json_response(description: str, schema: dict[str, Any], example: Any) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": schema, "example": example}}}


GATEWAY_PATHS: dict[str, Any] = {
    "/healthz": {"get": {
        "summary": "Liveness: the gateway process answers.", "tags": ["ops"],
        "operationId": "liveness",
        "responses": {"200": _json_response("OK", {
            "type": "object", "properties": {"status": {"type": "string"}}}, {"status": "ok"})},
    }},
    "/readyz": {"get": {
        "summary": "Readiness: Redis and every upstream service answer.", "tags": ["ops"],
        "operationId": "readiness",
        "responses": {
            "200": _json_response("Ready", _READINESS, {"status": "ready", "checks": {
                "redis": "ok", "auth": "ok", "tasks": "ok", "logger": "ok"}}),
            "503": _json_response("A dependency is unavailable", _READINESS, {
                "status": "unavailable", "checks": {
                    "redis": "ok", "auth": "ok", "tasks": "error", "logger": "ok"}}),
        },
    }},
    "/openapi.json": {"get": {
        "summary": "This OpenAPI document.", "tags": ["ops"], "operationId": "openapi_document",
        "responses": {"200": _json_response("The document", _JSON_OBJECT, {
            "openapi": "3.0.3", "info": {"title": "Taskstream API", "version": "1.0"},
            "paths": {}})},
    }},
    "/docs": {"get": {
        "summary": "The API reference as an interactive page (Swagger UI).", "tags": ["ops"],
        "operationId": "docs_page",
        "responses": {"200": {"description": "HTML", "content": {"text/html": {
            "schema": {"type": "string"}, "example": "<!doctype html>..."}}}},
    }},
}

RATE_LIMIT_HEADERS: dict[str, dict[str, Any]] = {
    "X-RateLimit-Limit": {"description": "Requests allowed in the window (on every answer "
                                         "of a forwarded route)",
                          "schema": {"type": "integer"}, "example": 600},
    "X-RateLimit-Remaining": {"description": "Requests left in the window",
                              "schema": {"type": "integer"}, "example": 599},
    "X-RateLimit-Reset": {"description": "When the window resets (Unix time, seconds)",
                          "schema": {"type": "integer"}, "example": 1743843600},
}
EVERYWHERE = frozenset({"X-Request-ID", *RATE_LIMIT_HEADERS})  # not repeated in the Markdown
RATE_LIMITED = {name: {"$ref": f"#/components/headers/{name}"} for name in RATE_LIMIT_HEADERS}
RETRY_AFTER = {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
REQUEST_ID = {"$ref": "#/components/parameters/X-Request-ID"}


def _error(description: str, example: str, headers: dict[str, Any] | None = None
           ) -> dict[str, Any]:
    response = _json_response(description, {"$ref": "#/components/schemas/Error"},
                              {"error": example})
    return {**response, "headers": headers} if headers else response


GATEWAY_ERRORS = {
    "429": _error("Rate limit exceeded (see `Retry-After`)",
                  "Too many requests, please try again later.",
                  {**RETRY_AFTER, **RATE_LIMITED}),
    "502": _error("Bad response from the upstream service",
                  "Bad response from upstream service 'tasks'"),
    "503": _error("The upstream service is unavailable", "Service temporarily unavailable, "
                  "please retry", RETRY_AFTER),
    "504": _error("The upstream service timed out", "Upstream service 'tasks' timed out"),
}

DESCRIPTION = (
    "The public API of Taskstream, served by the gateway. Errors are always "
    "`{\"error\": \"...\", \"details\": ...}`; every response carries `X-Request-ID`. "
    "Send `Authorization: Bearer <access token>` (from `POST /auth/login`). JSON bodies are "
    f"objects nested at most {MAX_JSON_DEPTH} levels (deeper: 400); ids are positive 64-bit "
    "integers (a larger one in a path is a 404, in a query a 400). `GET /docs` lets you try "
    "every call "
    "(\"Authorize\" with your access token); `openapi-python-client generate --url "
    "<gateway>/openapi.json` makes a typed Python client.")
OPERATION_KEYS = ("get", "put", "post", "delete", "patch")


def merge_specs(specs: Mapping[str, Mapping[str, Any]], title: str = "Taskstream API"
                ) -> dict[str, Any]:
    """Merge the services' documents into one, keeping only what the gateway forwards."""
    merged: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": title, "version": "1.0", "description": DESCRIPTION},
        "paths": copy.deepcopy(GATEWAY_PATHS),
        "components": {
            "schemas": {"Readiness": READINESS_SCHEMA},
            "parameters": {"X-Request-ID": REQUEST_HEADERS["X-Request-ID"]},
            "headers": {**RATE_LIMIT_HEADERS, "X-Request-ID": RESPONSE_HEADERS["X-Request-ID"],
                        "Retry-After": RESPONSE_HEADERS["Retry-After"]},
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }
    allowed = public_operations()
    for service in sorted(specs):
        _merge_one(merged, specs[service], allowed)
    for _path, _method, operation in _operations(merged):
        _add_request_id(operation)
    for response in merged["components"].get("responses", {}).values():
        response.setdefault("headers", {}).update(_request_id_header())
    _drop_unreferenced(merged)
    merged["paths"] = dict(sorted(merged["paths"].items()))
    for kind, entries in merged["components"].items():
        merged["components"][kind] = dict(sorted(entries.items()))
    return copy.deepcopy(merged)


def _merge_one(merged: dict[str, Any], spec: Mapping[str, Any], allowed: set) -> None:
    for path, item in spec.get("paths", {}).items():
        shared_parameters = item.get("parameters", [])  # flask-smorest's path parameters
        for method in OPERATION_KEYS:
            if method not in item or (path, method) not in allowed:
                continue
            operation = copy.deepcopy(item[method])
            operation["parameters"] = _with_parameters(shared_parameters,
                                                       operation.get("parameters", []))
            operation.setdefault("responses", {}).update(copy.deepcopy(GATEWAY_ERRORS))
            for response in operation["responses"].values():
                if "$ref" not in response:
                    response.setdefault("headers", {}).update(RATE_LIMITED)
            served = merged["paths"].setdefault(path, {})
            served[method] = _combined(served[method], operation) if method in served else operation
    for kind, entries in spec.get("components", {}).items():
        if kind != "securitySchemes":
            merged["components"].setdefault(kind, {}).update(copy.deepcopy(entries))


def _combined(first: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """One operation that two services answer, the gateway choosing by a query parameter:
    the first's summary, both descriptions, every parameter (those of one service only are
    optional), every response (the first's win on a clash)."""
    combined = copy.deepcopy(first)
    combined["description"] = "\n\n".join(
        text for text in (first.get("description"), other.get("description")) if text)
    named = {(p.get("in"), p.get("name")) for p in first.get("parameters", [])}
    for parameter in other.get("parameters", []):
        if (parameter.get("in"), parameter.get("name")) not in named:
            combined["parameters"].append({**copy.deepcopy(parameter), "required": False})
    combined["responses"] = {**copy.deepcopy(other["responses"]), **combined["responses"]}
    return combined


def _with_parameters(shared: list[dict[str, Any]], own: list[dict[str, Any]]
                     ) -> list[dict[str, Any]]:
    """The path item's parameters on the operation itself (its own win on a clash)."""
    named = {(p.get("in"), p.get("name")) for p in own}
    return [*copy.deepcopy([p for p in shared if (p.get("in"), p.get("name")) not in named]),
            *own]


def _request_id_header() -> dict[str, Any]:
    return {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}


def _add_request_id(operation: dict[str, Any]) -> None:
    """Every operation takes an `X-Request-ID` and every response carries one."""
    operation.setdefault("parameters", []).append(dict(REQUEST_ID))
    for response in operation.get("responses", {}).values():
        if "$ref" not in response:
            response.setdefault("headers", {}).update(_request_id_header())


def _drop_unreferenced(document: dict[str, Any]) -> None:
    """Remove the components nothing refers to (flask-smorest registers a few eagerly)."""
    reached: set[str] = set()
    pending = _references(document["paths"])
    while pending:
        ref = pending.pop()
        if ref not in reached:
            reached.add(ref)
            _, _, kind, name = ref.split("/", 3)
            pending |= _references(document["components"].get(kind, {}).get(name, {}))
    for kind, entries in document["components"].items():
        if kind != "securitySchemes":
            document["components"][kind] = {
                name: entry for name, entry in entries.items()
                if f"#/components/{kind}/{name}" in reached}


def _references(value: Any) -> set[str]:
    return set(re.findall(r'"\$ref": "(#/components/[^"]+)"', json.dumps(value)))


def render_markdown(spec: Mapping[str, Any]) -> str:
    """Render the reference as Markdown (docs/api.md)."""
    lines = [f"# {spec['info']['title']}", "", spec["info"].get("description", ""), "",
             "Generated from the gateway's `/openapi.json` by `taskstream docs generate`; "
             "do not edit by hand. `GET /docs` shows the same document interactively.", "",
             "| method | path | summary | permission |", "|---|---|---|---|"]
    for path, method, operation in _operations(spec):
        lines.append(f"| {method.upper()} | `{path}` | {operation.get('summary', '')} | "
                     f"{_permission(operation)} |")
    components = spec.get("components", {})
    for path, method, operation in _operations(spec):
        lines += _operation_section(path, method, operation, components)
    lines += _headers_section(components)
    lines += ["", "## Schemas", ""]
    for name, schema in components.get("schemas", {}).items():
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


def _resolved(components: Mapping[str, Any], value: Mapping[str, Any]) -> Mapping[str, Any]:
    """`value`, or the component its `$ref` names."""
    if "$ref" not in value:
        return value
    _, _, kind, name = str(value["$ref"]).split("/", 3)
    return components.get(kind, {}).get(name, {})


def _operation_section(path: str, method: str, operation: Mapping[str, Any],
                       components: Mapping[str, Any]) -> list[str]:
    lines = ["", f"## {method.upper()} {path}", "", operation.get("summary", ""), ""]
    if operation.get("description"):
        lines += [operation["description"].strip(), ""]
    lines.append(f"Permission: {_permission(operation)}")
    for parameter in map(lambda p: _resolved(components, p), operation.get("parameters", [])):
        if parameter["name"] in EVERYWHERE:
            continue
        lines.append(f"- parameter `{parameter['name']}` ({parameter.get('in')})"
                     f"{' required' if parameter.get('required') else ''}")
    body = operation.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        lines.append(f"- body `{media}`: {_schema_name(content.get('schema', {}))}")
    lines += ["", "| status | meaning | headers |", "|---|---|---|"]
    for status, response in sorted(operation.get("responses", {}).items()):
        response = _resolved(components, response)
        described = response.get("description", "")
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        suffix = f" ({_schema_name(schema)})" if schema else ""
        headers = ", ".join(f"`{name}`" for name in response.get("headers", {})
                            if name not in EVERYWHERE)
        lines.append(f"| {status} | {described}{suffix} | {headers} |")
    return lines


def _headers_section(components: Mapping[str, Any]) -> list[str]:
    lines = ["", "## Headers", "", "| header | in | meaning |", "|---|---|---|"]
    for name, parameter in components.get("parameters", {}).items():
        if parameter.get("in") == "header":
            lines.append(f"| `{name}` | request | {parameter.get('description', '')} |")
    for name, header in components.get("headers", {}).items():
        lines.append(f"| `{name}` | response | {header.get('description', '')} |")
    return lines


def _schema_name(schema: Mapping[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if schema.get("type") == "array" and "items" in schema:
        return f"array of {_schema_name(schema['items'])}"
    return str(schema.get("type", "object"))
