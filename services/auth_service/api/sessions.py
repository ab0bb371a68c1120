"""`/auth/*`: register, login, refresh, logout, me."""

from __future__ import annotations

from typing import Any

from services.auth_service.api.deps import deps
from services.auth_service.api.schemas import (
    CredentialsSchema,
    LogoutSchema,
    MeSchema,
    RefreshTokenSchema,
    RegisteredUserSchema,
    RegistrationSchema,
    TokenPairSchema,
)
from services.auth_service.service_layer import accounts, sessions
from shared.auth import authenticate
from shared.http import Blueprint, documents_errors

blp = Blueprint("auth", __name__, url_prefix="/auth",
                description="Accounts, logins and token refresh.")


@blp.route("/register", methods=["POST"])
@blp.arguments(RegistrationSchema())
@blp.response(201, RegisteredUserSchema)
@documents_errors(blp, 400, 403, 409, 422)
def register(body: dict[str, Any]) -> accounts.UserView:
    """Create a member account (only while registration is open)."""
    d = deps()
    return accounts.register(d.uow(), d.passwords, d.allow_registration,
                             body["username"], body["password"])


@blp.route("/login", methods=["POST"])
@blp.arguments(CredentialsSchema())
@blp.response(200, TokenPairSchema)
@documents_errors(blp, 400, 401, 422)
def login(body: dict[str, Any]) -> sessions.TokenPair:
    """Log in with username and password; returns an access and a refresh token."""
    d = deps()
    return sessions.login(d.uow(), d.passwords, d.tokens, body["username"], body["password"])


@blp.route("/refresh", methods=["POST"])
@blp.arguments(RefreshTokenSchema())
@blp.response(200, TokenPairSchema)
@documents_errors(blp, 400, 401, 422)
def refresh(body: dict[str, Any]) -> sessions.TokenPair:
    """Trade a refresh token for a new pair; a reused token revokes its whole family."""
    d = deps()
    return sessions.refresh(d.uow(), d.tokens, body["refresh_token"])


@blp.route("/logout", methods=["POST"])
@blp.arguments(LogoutSchema())
@blp.response(204)
@documents_errors(blp, 400, 422, 503)
def logout(body: dict[str, Any]) -> None:
    """End the session of a refresh token; with `all`, every session and access token."""
    d = deps()
    if body["all"]:
        sessions.logout_everywhere(d.uow(), d.tokens, d.revoker, body["refresh_token"])
    else:
        sessions.logout(d.uow(), d.tokens, body["refresh_token"])


@blp.route("/me", methods=["GET"])
@blp.doc(security=[{"bearerAuth": []}])
@blp.response(200, MeSchema)
@documents_errors(blp, 401)
def me() -> accounts.UserView:
    """The caller's account and the permissions of their role."""
    return accounts.profile(deps().uow(), authenticate().user_id)
