"""Fakes of the auth service's own abstractions, and settings for tests."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.auth_service.adapters.keys import KeySet, SigningKey, StaticKeySource
from services.auth_service.adapters.orm import RefreshToken, User
from services.auth_service.config import Settings
from services.auth_service.service_layer.errors import UsernameTaken
from shared.settings import CommonSettings


class FakeUsers:
    """Users in a dict."""

    def __init__(self) -> None:
        self.rows: dict[int, User] = {}

    def add(self, user: User) -> None:
        if self.by_username(user.username) is not None:
            raise UsernameTaken(user.username)
        user.id = len(self.rows) + 1
        self.rows[user.id] = user

    def get(self, user_id: int, lock: bool = False) -> User | None:
        return self.rows.get(user_id)

    def by_username(self, username: str, lock: bool = False) -> User | None:
        return next((u for u in self.rows.values() if u.username.lower() == username.lower()),
                    None)

    def page(self, offset: int, limit: int) -> list[User]:
        return [self.rows[key] for key in sorted(self.rows)][offset:offset + limit]

    def count(self) -> int:
        return len(self.rows)

    def active_admin_ids(self) -> list[int]:
        return [u.id for u in self.rows.values() if u.role == "admin" and not u.disabled]

    def revocations_since(self, since: datetime) -> dict[int, datetime]:
        return {u.id: u.tokens_revoked_at for u in self.rows.values()
                if u.tokens_revoked_at is not None and u.tokens_revoked_at > since}


class FakeRefreshTokens:
    """Refresh tokens in a list."""

    def __init__(self) -> None:
        self.rows: list[RefreshToken] = []

    def add(self, token: RefreshToken) -> None:
        token.id = len(self.rows) + 1
        self.rows.append(token)

    def by_hash(self, token_hash: str) -> RefreshToken | None:
        return next((t for t in self.rows if t.token_hash == token_hash), None)

    def owner_of(self, token_hash: str) -> int | None:
        token = self.by_hash(token_hash)
        return token.user_id if token is not None else None

    def revoke_family(self, family_id: uuid.UUID, at: datetime) -> None:
        self._revoke([t for t in self.rows if t.family_id == family_id], at)

    def revoke_user(self, user_id: int, at: datetime) -> None:
        self._revoke([t for t in self.rows if t.user_id == user_id], at)

    @staticmethod
    def _revoke(tokens: list[RefreshToken], at: datetime) -> None:
        for token in tokens:
            token.revoked_at = token.revoked_at or at


class FakeUnitOfWork:
    """One shared in-memory store; counts commits."""

    def __init__(self) -> None:
        self.users = FakeUsers()
        self.refresh_tokens = FakeRefreshTokens()
        self.commits = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def commit(self) -> None:
        self.commits += 1

    def __call__(self) -> FakeUnitOfWork:
        """Act as the factory of itself."""
        return self


class FakeRevocations:
    """Revocation marks in a dict; `down` makes them fail the way a lost Redis does, and
    `unwritable` only their writes (a mark that cannot be written is dropped, as
    `RedisRevocations.revoke` drops it after logging)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.marks: dict[int, float] = {}
        self.clock = clock
        self.down = False
        self.unwritable = False

    def revoke(self, user_id: int, at: float) -> None:
        with contextlib.suppress(redis.ConnectionError):
            self.publish({user_id: at})

    def revoke_now(self, user_id: int) -> None:
        """Mark `user_id` at the fake's clock (for verifier tests)."""
        self.revoke(user_id, self.clock())

    def publish(self, marks: Mapping[int, float]) -> None:
        self._check()
        if self.unwritable:
            raise redis.ConnectionError("Redis refuses writes (fake)")
        for user_id, at in marks.items():
            self.marks[user_id] = max(at, self.marks.get(user_id, at))

    def recent(self) -> dict[int, float]:
        self._check()
        return dict(self.marks)

    def _check(self) -> None:
        if self.down:
            raise redis.ConnectionError("Redis is down (fake)")


def signing_key(kid: str = "test-kid") -> SigningKey:
    """A fresh Ed25519 signing key."""
    return SigningKey(kid, Ed25519PrivateKey.generate(), datetime.now(UTC))


def static_keys(*keys: SigningKey) -> StaticKeySource:
    """A key source over the given keys (the last signs)."""
    return StaticKeySource(KeySet(keys or (signing_key(),)))


def common_settings(**changes: Any) -> CommonSettings:
    """Common settings without reading the environment."""
    values: dict[str, Any] = {
        "environment": "test", "redis_url": "redis://127.0.0.1:1/0", "namespace": "ts-test",
        "log_level": "INFO", "log_format": "text", "jwt_issuer": "taskstream-auth",
        "jwt_audience": "taskstream", "jwt_algorithm": "EdDSA", "jwks_url": "",
        "jwks_refresh_seconds": 30.0, "db_pool_size": 2, "db_max_overflow": 2,
        "db_connect_attempts": 3, "db_connect_backoff": 0.1,
    }
    values.update(changes)
    return CommonSettings(**values)


def make_settings(data_dir: Path, database_url: str = "", **changes: Any) -> Settings:
    """Auth settings for a test, keys under `data_dir`."""
    values: dict[str, Any] = {
        "common": common_settings(), "database_url": database_url, "data_dir": data_dir,
        "key_dir": data_dir / "keys", "private_keys_json": "", "signing_kid": "",
        "generate_keys": True, "refresh_token_ttl": 3600,
        "allow_registration": True,
    }
    values.update(changes)
    return Settings(**values)
