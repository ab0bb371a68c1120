"""Domain errors mapped to HTTP, in one place."""

from __future__ import annotations

from flask import Flask, Response

from services.task_service.domain.model import (
    IdempotencyKeyReused,
    NothingToChange,
    TaskNotFound,
    VersionMismatch,
)
from services.task_service.service_layer.csv_import import CsvRejected
from shared.errors import error_response

TASK_NOT_FOUND = "Task not found"
TASK_MODIFIED = "Task was modified by someone else"
KEY_REUSED = "Idempotency-Key was already used with a different request"


def register_domain_errors(app: Flask) -> None:
    """Answer each domain error with the contract's status and body."""
    handlers: dict[type[Exception], tuple[int, str]] = {
        TaskNotFound: (404, TASK_NOT_FOUND),
        VersionMismatch: (412, TASK_MODIFIED),
        IdempotencyKeyReused: (422, KEY_REUSED),
        NothingToChange: (422, "At least one field must be given"),
    }
    for exc_type, (status, message) in handlers.items():
        app.register_error_handler(exc_type, _answer(status, message))
    app.register_error_handler(CsvRejected, _csv_rejected)


def _answer(status: int, message: str):  # type: ignore[no-untyped-def]
    def handle(_exc: Exception) -> Response:
        return error_response(status, message)

    return handle


def _csv_rejected(exc: CsvRejected) -> Response:
    return error_response(exc.status, exc.message, exc.details)
