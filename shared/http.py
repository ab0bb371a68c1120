"""HTTP plumbing every service shares: request ids, JSON bodies, security headers, API docs,
and the dependencies a view reaches."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from array import array
from collections.abc import Callable
from itertools import accumulate
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from marshmallow import Schema, fields
from webargs import core
from webargs.flaskparser import FlaskParser

from shared.errors import DEFAULT_MESSAGES, ApiError, register_error_handlers
from shared.headers import REQUEST_HEADERS, RESPONSE_HEADERS
from shared.ids import IdConverter, id_parameter_schema
from shared.logs import request_id_var
from shared.metrics import init_metrics

log = logging.getLogger("taskstream.http")
access_log = logging.getLogger("taskstream.access")
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

REQUEST_ID_HEADER = "X-Request-ID"
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
NOT_A_JSON_OBJECT = "Request body must be a JSON object"
MAX_JSON_DEPTH = 32  # our bodies nest two levels; deeper is an attack on the recursive parsers
TOO_DEEP = f"Request body nests JSON deeper than {MAX_JSON_DEPTH} levels"



class JsonObjectParser(FlaskParser):
    """Parse JSON bodies whatever the Content-Type; anything but an object is a 400."""

    def load_json(self, req: Any, schema: Any) -> Any:
        """Return the body as a dict, `missing` when empty, or raise 400."""
        raw = req.get_data(cache=True)
        if not raw or not raw.strip():
            return core.missing
        if json_depth(raw) > MAX_JSON_DEPTH:
            raise ApiError(400, TOO_DEEP)
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ApiError(400, NOT_A_JSON_OBJECT) from None
        if not isinstance(body, dict):
            raise ApiError(400, NOT_A_JSON_OBJECT)
        field = _field_with_nul(body)
        if field is not None:  # PostgreSQL text cannot hold NUL: refuse it at the edge
            problem = ["NUL characters are not allowed."]
            raise ApiError(422, f"Field '{field}': {problem[0]}", {"json": {field: problem}})
        return body


_JSON_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_NOT_A_BRACKET = bytes(byte for byte in range(256) if byte not in b"[]{}")
_BRACKET_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1, +1, -1, -1 as signed bytes


def json_depth(raw: bytes) -> int:
    """How deeply a JSON text nests arrays and objects, found in linear time, not recursively."""
    outside_strings = b"".join(_JSON_ESCAPE.sub(b"", raw).split(b'"')[::2])
    brackets = outside_strings.translate(None, _NOT_A_BRACKET)
    return max(accumulate(array("b", brackets.translate(_BRACKET_STEP))), default=0)


def _field_with_nul(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (key or value) holding a NUL character."""
    if isinstance(value, str):
        return (path or "body") if "\x00" in value else None
    items: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return path or "body"
            items.append((f"{path}.{key}" if path else key, item))
    elif isinstance(value, list):
        items = [(f"{path}.{index}" if path else str(index), item)
                 for index, item in enumerate(value)]
    for item_path, item in items:
        found = _field_with_nul(item, item_path)
        if found is not None:
            return found
    return None


class Blueprint(SmorestBlueprint):
    """flask-smorest Blueprint: the strict JSON parser, operation ids and request headers."""

    ARGUMENTS_PARSER = JsonObjectParser()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks.append(_document_request_headers)

    def route(self, rule: str, **options: Any) -> Callable[[Any], Any]:
        """Register a view; its name is the operation's `operationId` (a client's method name)."""
        register = super().route(rule, **options)
        return lambda view: register(self.doc(operationId=view.__name__)(view))

    @staticmethod
    def request_headers(*names: str) -> Callable[[Any], Any]:
        """Document the request headers (of `shared.headers`) a view reads; below `route`."""

        def decorate(view: Any) -> Any:
            view._apidoc = {**getattr(view, "_apidoc", {}), "request_headers": names}
            return view

        return decorate


def _document_request_headers(doc: dict[str, Any], doc_info: dict[str, Any], **_kwargs: Any
                              ) -> dict[str, Any]:
    names = doc_info.get("request_headers", ())
    if names:
        doc.setdefault("parameters", []).extend(names)
    return doc


def current_request_id() -> str | None:
    """Return the id of the request being handled, if any."""
    return request_id_var.get()


def _assign_request_id() -> None:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
    g.request_id_token = request_id_var.set(g.request_id)
    g.request_started = time.perf_counter()


def _finish_response(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = getattr(g, "request_id", "") or uuid.uuid4().hex
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Cache-Control", "no-store")
    _log_access(response)
    return response


def _log_access(response: Response) -> None:
    started = g.get("request_started")
    elapsed_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
    quiet = request.path in QUIET_PATHS
    access_log.log(
        logging.DEBUG if quiet else logging.INFO, "%s %s %s", request.method, request.path,
        response.status_code,
        extra={"method": request.method, "path": request.path, "status": response.status_code,
               "duration_ms": elapsed_ms},
    )


def _reset_request_id(_exc: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        request_id_var.reset(token)


def init_http(app: Flask, max_body_bytes: int = 1024 * 1024) -> None:
    """Install request ids, JSON errors, security headers and the body size limit."""
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default is None: no limit
        app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.converters["id"] = IdConverter
    app.before_request(_assign_request_id)
    app.after_request(_finish_response)
    app.teardown_request(_reset_request_id)
    register_error_handlers(app)
    init_metrics(app, service_name(app))


DEPENDENCIES = "dependencies"
Dependencies = TypeVar("Dependencies")


def provide(app: Flask, dependencies: object) -> None:
    """Keep the objects `create_app` built (one frozen dataclass) on the app, for its views."""
    app.extensions[DEPENDENCIES] = dependencies


def provided(kind: type[Dependencies]) -> Dependencies:
    """The current app's dependencies, as its `create_app` provided them."""
    found = current_app.extensions[DEPENDENCIES]
    if not isinstance(found, kind):
        raise TypeError(f"the app provides {type(found).__name__}, not {kind.__name__}")
    return found


def service_name(app: Flask) -> str:
    """`task_service` for an app built in `services.task_service.entrypoints.app`."""
    parts = app.import_name.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "services" else parts[0]


class ErrorSchema(Schema):
    """The one error body: `{"error": "...", "details": ...}`."""

    error = fields.String(required=True, metadata={"example": "Field 'title' is required"})
    details = fields.Raw(metadata={
        "description": "Every problem, when there are several (validation, CSV rows)",
        "example": {"json": {"title": ["Missing data for required field."]}}})


class TaskstreamApi(Api):
    """flask-smorest's Api, documenting errors with the contract's one error body."""

    ERROR_SCHEMA = ErrorSchema


def create_api(app: Flask, title: str, description: str) -> Api:
    """Attach flask-smorest, serving the OpenAPI document at `/openapi.json`."""
    app.config.update(
        API_TITLE=title,
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={"info": {"description": description}},
    )
    api = TaskstreamApi(app)
    api.register_converter(IdConverter, id_parameter_schema)
    register_error_handlers(app)  # after flask-smorest's, so the contract's shape wins
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    for name, parameter in REQUEST_HEADERS.items():
        api.spec.components.parameter(name, "header", dict(parameter), lazy=True)
    for name, header in RESPONSE_HEADERS.items():
        api.spec.components.header(name, dict(header), lazy=True)
    return api


ERROR_DESCRIPTIONS = {
    400: "Malformed request (body not a JSON object, bad query parameter)",
    401: "Authentication required, or invalid or expired token",
    403: "The caller's role lacks the required permission",
    404: "Not found",
    409: "Conflict",
    412: "If-Match does not match the current version",
    413: "Request body too large (a CSV upload: also too many rows)",
    422: "Validation failed: first problem in `error`, all in `details`",
    429: "Rate limit exceeded",
    503: "A dependency is unavailable",
}


def error_example(code: int) -> dict[str, Any]:
    """A typical error body of a status."""
    if code == 422:
        return {"error": "Field 'title' is required",
                "details": {"json": {"title": ["Missing data for required field."]}}}
    return {"error": NOT_A_JSON_OBJECT if code == 400 else DEFAULT_MESSAGES.get(code, "Error")}


def documents_errors(blp: SmorestBlueprint, *codes: int) -> Callable[[Any], Any]:
    """Document the error responses an endpoint can give, all with ErrorSchema."""

    def decorate(view: Any) -> Any:
        for code in codes:
            view = blp.alt_response(
                code, schema=ErrorSchema, description=ERROR_DESCRIPTIONS.get(code, "Error"),
                example=error_example(code),
            )(view)
        return view

    return decorate


def permission_doc(permission: str) -> dict[str, Any]:
    """OpenAPI fields for an endpoint that needs a bearer token with `permission`."""
    return {
        "security": [{"bearerAuth": []}],
        "x-permission": permission,
    }
