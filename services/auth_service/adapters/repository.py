"""Repositories over the auth database; they hide SQLAlchemy from the use cases."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.auth_service.adapters.orm import RefreshToken, User
from services.auth_service.service_layer.errors import UsernameTaken


class UserRepository(Protocol):
    """Where users live."""

    def add(self, user: User) -> None:
        """Store a new user and give it an id."""

    def get(self, user_id: int) -> User | None:
        """Return the user with this id."""

    def by_username(self, username: str) -> User | None:
        """Return the user with this username, whatever its case."""

    def page(self, offset: int, limit: int) -> list[User]:
        """Return users ordered by id."""

    def count(self) -> int:
        """Return how many users exist."""

    def active_admin_ids(self) -> list[int]:
        """Return (and lock) the ids of admins who are not disabled."""


class RefreshTokenRepository(Protocol):
    """Where refresh tokens (their hashes) live."""

    def add(self, token: RefreshToken) -> None:
        """Store a new refresh token."""

    def by_hash(self, token_hash: str) -> RefreshToken | None:
        """Return (and lock) the token with this hash."""

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

    def get(self, user_id: int) -> User | None:
        """Return the user with this id."""
        return self.session.get(User, user_id)

    def by_username(self, username: str) -> User | None:
        """Return the user with this username, whatever its case."""
        query = select(User).where(func.lower(User.username) == username.lower())
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
