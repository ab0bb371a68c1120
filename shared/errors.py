"""One JSON error shape, `{"error": "...", "details": ...}`, for every failure at the edge."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from shared.logs import first_line
from shared.outages import is_outage
from shared.positions import PositionNotReached

log = logging.getLogger("taskstream.errors")

DEFAULT_MESSAGES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Too many requests, please try again later.",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


class ApiError(Exception):
    """An error that maps directly to an HTTP status and the contract's JSON body."""

    def __init__(self, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


def error_response(status: int, message: str, details: Any = None) -> Response:
    """Build the JSON error response."""
    body: dict[str, Any] = {"error": message}
    if details is not None:
        body["details"] = details
    response = jsonify(body)
    response.status_code = status
    return response


def validation_message(messages: dict[str, Any]) -> str:
    """Turn marshmallow's messages into the contract's first-problem sentence."""
    field, problems = _first_problem(messages)
    text = problems[0] if isinstance(problems, list) and problems else str(problems)
    if text == "Missing data for required field.":
        return f"Field '{field}' is required"
    if field == "_schema" or text.startswith(f"Invalid {field}"):  # names its field already
        return text
    return f"Field '{field}': {text}"


def _first_problem(messages: dict[str, Any]) -> tuple[str, Any]:
    field, problems = next(iter(messages.items()))
    if isinstance(problems, dict) and problems and all(isinstance(v, (list, dict)) for v in
                                                        problems.values()):
        nested_field, nested = _first_problem(problems)
        return (nested_field if field in {"json", "query", "form", "files"} else
                f"{field}.{nested_field}"), nested
    return field, problems


def _handle_http(exc: HTTPException) -> Response:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages") if isinstance(data, dict) else None
    if messages:
        return error_response(status, validation_message(messages), messages)
    message = data.get("message") if isinstance(data, dict) else None
    return error_response(status, message or DEFAULT_MESSAGES.get(status, exc.name))


def _handle_api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.message, exc.details)


def _handle_unexpected(exc: Exception) -> Response:
    if is_outage(exc):  # however it surfaced (shared.outages): the client may retry
        return _handle_unavailable(exc)
    log.exception("Unhandled error: %s", exc)
    return error_response(500, DEFAULT_MESSAGES[500])


def _handle_not_reached(exc: PositionNotReached) -> Response:
    response = error_response(503, str(exc))
    response.headers["Retry-After"] = "1"
    return response


def _handle_unavailable(exc: Exception) -> Response:
    log.warning("Dependency unavailable: %s", first_line(exc))
    response = error_response(503, "Service temporarily unavailable, please retry")
    response.headers["Retry-After"] = "1"
    return response


def register_error_handlers(app: Flask) -> None:
    """Make every error of the app answer with the JSON shape, never HTML or a trace."""
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(PositionNotReached, _handle_not_reached)
    app.register_error_handler(HTTPException, _handle_http)
    # Anything else is a 500, unless it says a database or Redis is out of reach (a 503).
    app.register_error_handler(Exception, _handle_unexpected)
