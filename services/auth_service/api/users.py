"""`/auth/users`: user management, for callers with `user:manage`."""

from __future__ import annotations

from typing import Any

from services.auth_service.api.deps import deps, requires_current
from services.auth_service.api.schemas import (
    NewUserSchema,
    UserPatchSchema,
    UserSchema,
)
from services.auth_service.service_layer import accounts
from shared.headers import response_headers
from shared.http import Blueprint, documents_errors, permission_doc
from shared.pagination import PageQuery, pagination_headers

blp = Blueprint("users", __name__, url_prefix="/auth/users",
                description="User management (user:manage).")


@blp.route("", methods=["GET"])
@blp.doc(**permission_doc("user:manage"))
@requires_current("user:manage")
@blp.arguments(PageQuery(), location="query", error_status_code=400)
@blp.response(200, UserSchema(many=True), headers=response_headers("X-Total-Count", "Link"))
@documents_errors(blp, 400, 401, 403)
def list_users(query: dict[str, int]) -> tuple[list[accounts.UserView], dict[str, str]]:
    """List users by id, one page at a time."""
    users, total = accounts.list_users(deps().uow(), query["page"], query["per_page"])
    return users, pagination_headers(query["page"], query["per_page"], total)


@blp.route("", methods=["POST"])
@blp.doc(**permission_doc("user:manage"))
@requires_current("user:manage")
@blp.arguments(NewUserSchema())
@blp.response(201, UserSchema, headers=response_headers("Location"))
@documents_errors(blp, 400, 401, 403, 409, 422)
def create_user(body: dict[str, Any]) -> tuple[accounts.UserView, dict[str, str]]:
    """Create a user with any role."""
    d = deps()
    user = accounts.create_user(d.uow(), d.passwords, body["username"], body["password"],
                                body["role"])
    return user, {"Location": f"/auth/users/{user.id}"}


@blp.route("/<id:user_id>", methods=["PATCH"], parameters=[
    {"in": "path", "name": "user_id", "description": "The user's `id`"}])
@blp.doc(**permission_doc("user:manage"))
@requires_current("user:manage")
@blp.arguments(UserPatchSchema())
@blp.response(200, UserSchema)
@documents_errors(blp, 400, 401, 403, 404, 409, 422, 503)
def update_user(body: dict[str, Any], user_id: int) -> accounts.UserView:
    """Change a user's role, or disable (or re-enable) the account.

    Setting a role or disabling revokes the user's access tokens everywhere within seconds.
    """
    d = deps()
    return accounts.update_user(d.uow(), d.revoker, user_id, body.get("role"),
                                body.get("disabled"))
