"""The object graph the views use, built by create_app and kept on the app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app

from services.auth_service.adapters.keys import KeySource
from services.auth_service.adapters.passwords import Argon2Passwords
from services.auth_service.service_layer.sessions import TokenPolicy
from services.auth_service.service_layer.unit_of_work import UnitOfWork

EXTENSION = "auth_service"


@dataclass(frozen=True)
class AuthDeps:
    """What a request may need: a fresh unit of work, password hashing, tokens, keys."""

    uow: Callable[[], UnitOfWork]
    passwords: Argon2Passwords
    tokens: TokenPolicy
    keys: KeySource
    allow_registration: bool


def deps() -> AuthDeps:
    """The dependencies of the current app."""
    found: AuthDeps = current_app.extensions[EXTENSION]
    return found
