"""The one place where the auth service's domain errors become HTTP responses."""

from __future__ import annotations

from flask import Flask, Response

from services.auth_service.service_layer import errors
from shared.auth import FORBIDDEN, INVALID_TOKEN
from shared.errors import error_response

HTTP_ERRORS: dict[type[errors.AuthError], tuple[int, str]] = {
    errors.InvalidCredentials: (401, "Invalid username or password"),
    errors.InvalidRefreshToken: (401, "Invalid or expired refresh token"),
    errors.AccountUnavailable: (401, INVALID_TOKEN),
    errors.RegistrationClosed: (403, "Registration is disabled"),
    errors.NotPermitted: (403, FORBIDDEN),
    errors.UserNotFound: (404, "User not found"),
    errors.UsernameTaken: (409, "Username already exists"),
    errors.LastAdmin: (409, "Cannot remove the last active admin"),
}


def _respond(exc: errors.AuthError) -> Response:
    status, message = HTTP_ERRORS.get(type(exc), (500, "Internal server error"))
    return error_response(status, message)


def register_error_mapping(app: Flask) -> None:
    """Answer every domain error with its status and message."""
    app.register_error_handler(errors.AuthError, _respond)
