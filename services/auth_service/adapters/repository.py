"""Repositories over the auth database; they hide SQLAlchemy from the use cases."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.auth_service.adapters.orm import RefreshToken, User
from services.auth_service.service_layer.errors import UsernameTaken


class UserRepository(Protocol):
    """Where users live."""

    def add(self, user: User) -> None:
        """Store a new user and give it an id."""

    def get(self, user_id: int, lock: bool = False) -> User | None:
        """Return the user with this id; `lock` holds its row until the transaction ends."""

    def by_username(self, username: str, lock: bool = False) -> User | None:
        """Return the user with this username, whatever its case; `lock` as for `get`."""

    def page(self, offset: int, limit: int) -> list[User]:
        """Return users ordered by id."""

    def count(self) -> int:
        """Return how many users exist."""

    def active_admin_ids(self) -> list[int]:
        """Return (and lock) the ids of admins who are not disabled."""

    def revocations_since(self, since: datetime) -> dict[int, datetime]:
        """Return user id -> `tokens_revoked_at` of the marks recorded after `since`."""


class RefreshTokenRepository(Protocol):
    """Where refresh tokens (their hashes) live."""

    def add(self, token: RefreshToken) -> None:
        """Store a new refresh token."""

    def by_hash(self, token_hash: str) -> RefreshToken | None:
        """Return (and lock) the token with this hash."""

    def owner_of(self, token_hash: str) -> int | None:
        """Return the id of the user the token with this hash belongs to (no lock)."""

    def revoke_family(self, family_id: uuid.UUID, at: datetime) -> None:
        """Revoke every token of a rotation family."""

    def revoke_user(self, user_id: int, at: datetime) -> None:
        """Revoke every token of a user."""


class SqlUserRepository:
    """Users in PostgreSQL."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, user: User) -> None:
        """Store a new user and flush, so that it has an id (a concurrent twin is refused)."""
        self.session.add(user)
        try:
            self.session.flush()
        except IntegrityError as exc:
            raise UsernameTaken(user.username) from exc

    def get(self, user_id: int, lock: bool = False) -> User | None:
        """Return the user with this id; `lock` reads its newest state and holds its row."""
        if not lock:
            return self.session.get(User, user_id)
        return self._locked(select(User).where(User.id == user_id))

    def by_username(self, username: str, lock: bool = False) -> User | None:
        """Return the user with this username, whatever its case; `lock` as for `get`."""
        query = select(User).where(func.lower(User.username) == username.lower())
        return self._locked(query) if lock else self.session.scalars(query).one_or_none()

    def _locked(self, query: Select[User]) -> User | None:
        """The newest state of the user `query` finds, its row held until the transaction ends
        (`FOR NO KEY UPDATE`, what an UPDATE takes: it excludes the user's other lockers and
        writers, not the key-share locks of refresh tokens being inserted for them)."""
        query = query.with_for_update(key_share=True).execution_options(populate_existing=True)
        return self.session.scalars(query).one_or_none()

    def page(self, offset: int, limit: int) -> list[User]:
        """Return users ordered by id."""
        query = select(User).order_by(User.id).offset(offset).limit(limit)
        return list(self.session.scalars(query))

    def count(self) -> int:
        """Return how many users exist."""
        return int(self.session.scalar(select(func.count()).select_from(User)) or 0)

    def active_admin_ids(self) -> list[int]:
        """Return and lock the active admins, so two requests cannot remove the last two."""
        query = (select(User.id).where(User.role == "admin", User.disabled.is_(False))
                 .order_by(User.id).with_for_update())
        return list(self.session.scalars(query))

    def revocations_since(self, since: datetime) -> dict[int, datetime]:
        """Return the marks recorded after `since` (an index range scan)."""
        query = select(User.id, User.tokens_revoked_at).where(User.tokens_revoked_at > since)
        return {user_id: at for user_id, at in self.session.execute(query) if at is not None}


class SqlRefreshTokenRepository:
    """Refresh tokens in PostgreSQL."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, token: RefreshToken) -> None:
        """Store a new refresh token."""
        self.session.add(token)
        self.session.flush()

    def by_hash(self, token_hash: str) -> RefreshToken | None:
        """Return the token with this hash, locked until the transaction ends."""
        query = select(RefreshToken).where(RefreshToken.token_hash == token_hash)
        return self.session.scalars(query.with_for_update()).one_or_none()

    def owner_of(self, token_hash: str) -> int | None:
        """Return the id of the token's user (it never changes, so no lock is needed)."""
        query = select(RefreshToken.user_id).where(RefreshToken.token_hash == token_hash)
        return self.session.scalar(query)

    def revoke_family(self, family_id: uuid.UUID, at: datetime) -> None:
        """Revoke every token of a rotation family."""
        self._revoke(RefreshToken.family_id == family_id, at)

    def revoke_user(self, user_id: int, at: datetime) -> None:
        """Revoke every token of a user."""
        self._revoke(RefreshToken.user_id == user_id, at)

    def _revoke(self, condition: object, at: datetime) -> None:
        statement = (update(RefreshToken)
                     .where(condition, RefreshToken.revoked_at.is_(None))  # type: ignore[arg-type]
                     .values(revoked_at=at)
                     .execution_options(synchronize_session="fetch"))
        self.session.execute(statement)
