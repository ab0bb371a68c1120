"""The object graph the views use, built by create_app and kept on the app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from services.auth_service.adapters.keys import KeySource
from services.auth_service.adapters.passwords import Argon2Passwords
from services.auth_service.service_layer import accounts
from services.auth_service.service_layer.sessions import TokenPolicy
from services.auth_service.service_layer.unit_of_work import UnitOfWork
from shared.auth import authenticate
from shared.http import provided
from shared.revocation import TokenRevoker

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class AuthDeps:
    """What a request may need: a fresh unit of work, password hashing, tokens, keys, and
    where access tokens are revoked."""

    uow: Callable[[], UnitOfWork]
    passwords: Argon2Passwords
    tokens: TokenPolicy
    keys: KeySource
    revoker: TokenRevoker
    allow_registration: bool


def deps() -> AuthDeps:
    """The dependencies of the current app."""
    return provided(AuthDeps)


def requires_current(permission: str) -> Callable[[F], F]:
    """Allow the view only to callers whose account, as it is now, grants `permission`.

    Unlike `shared.auth.requires`, which trusts the token's role, this reads the caller from
    the database: disabled or deleted → 401, a role without `permission` → 403.
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            accounts.authorize(deps().uow(), authenticate().user_id, permission)
            return view(*args, **kwargs)

        guarded.required_permission = permission  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate
