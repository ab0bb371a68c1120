"""Password hashing that is quick to run: the production hasher with cheap parameters."""

from __future__ import annotations

from argon2 import PasswordHasher

from services.auth_service.adapters.passwords import Argon2Passwords


def fast_passwords() -> Argon2Passwords:
    """Cheap argon2 parameters, for tests only."""
    return Argon2Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
