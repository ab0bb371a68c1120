"""Units of work: one transaction per use case, committed explicitly, else rolled back."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from sqlalchemy.orm import Session, sessionmaker

from services.auth_service.adapters.repository import (
    RefreshTokenRepository,
    SqlRefreshTokenRepository,
    SqlUserRepository,
    UserRepository,
)


class UnitOfWork(Protocol):
    """The repositories of one transaction."""

    users: UserRepository
    refresh_tokens: RefreshTokenRepository

    def __enter__(self) -> Self:
        """Begin the transaction."""

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Roll back whatever was not committed."""

    def commit(self) -> None:
        """Commit the transaction."""


class SqlAlchemyUnitOfWork:
    """A unit of work over one SQLAlchemy session."""

    users: UserRepository
    refresh_tokens: RefreshTokenRepository

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def __enter__(self) -> Self:
        """Open a session and its repositories."""
        self.session = self.session_factory()
        self.users = SqlUserRepository(self.session)
        self.refresh_tokens = SqlRefreshTokenRepository(self.session)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Roll back anything uncommitted and close the session."""
        self.session.rollback()
        self.session.close()

    def commit(self) -> None:
        """Commit the transaction."""
        self.session.commit()
