"""Account use cases: register, create, list, change, look up users."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from services.auth_service.adapters.orm import User
from services.auth_service.adapters.passwords import Argon2Passwords
from services.auth_service.service_layer.errors import (
    AccountUnavailable,
    LastAdmin,
    NotPermitted,
    RegistrationClosed,
    UsernameTaken,
    UserNotFound,
)
from services.auth_service.service_layer.unit_of_work import UnitOfWork
from shared.auth import ROLE_PERMISSIONS
from shared.revocation import TokenRevoker

log = logging.getLogger("taskstream.auth.accounts")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class UserView:
    """A user as the outside may see it (never the password hash)."""

    id: int
    username: str
    role: str
    disabled: bool
    created_at: datetime

    @property
    def permissions(self) -> list[str]:
        """The permissions of the user's role, sorted."""
        return sorted(ROLE_PERMISSIONS[self.role])

    @classmethod
    def of(cls, user: User) -> UserView:
        """Copy what may leave the unit of work."""
        return cls(user.id, user.username, user.role, user.disabled, user.created_at)


def create_user(uow: UnitOfWork, passwords: Argon2Passwords, username: str, password: str,
                role: str = "member", clock: Clock = utcnow) -> UserView:
    """Create a user with a hashed password; a taken username (any case) is refused."""
    with uow:
        if uow.users.by_username(username) is not None:
            raise UsernameTaken(username)
        user = User(username=username, password_hash=passwords.hash(password), role=role,
                    disabled=False, created_at=clock())
        uow.users.add(user)
        uow.commit()
        log.info("Created user %s (%s) with role %s", user.id, username, role)
        return UserView.of(user)


def register(uow: UnitOfWork, passwords: Argon2Passwords, registration_open: bool,
             username: str, password: str) -> UserView:
    """Self-registration: a new member, when registration is open."""
    if not registration_open:
        raise RegistrationClosed()
    return create_user(uow, passwords, username, password, role="member")


def list_users(uow: UnitOfWork, page: int, per_page: int) -> tuple[list[UserView], int]:
    """Return one page of users (by id) and the total count."""
    with uow:
        users = uow.users.page((page - 1) * per_page, per_page)
        return [UserView.of(user) for user in users], uow.users.count()


def update_user(uow: UnitOfWork, revoker: TokenRevoker, user_id: int, role: str | None = None,
                disabled: bool | None = None, clock: Clock = utcnow) -> UserView:
    """Change a user's role or disable them; disabling ends their refresh sessions at once.

    Setting a role or disabling also revokes the user's access tokens: the mark is recorded
    with the change, in the same transaction, and handed to `revoker` after the commit.
    """
    with uow:
        user = uow.users.get(user_id, lock=True)
        if user is None:
            raise UserNotFound(user_id)
        if _removes_an_admin(user, role, disabled) and len(uow.users.active_admin_ids()) <= 1:
            raise LastAdmin(user_id)
        if role is not None:
            user.role = role
        if disabled is not None:
            user.disabled = disabled
        if disabled:
            uow.refresh_tokens.revoke_user(user.id, clock())
        revoked_at = revoke_access_tokens(user, clock) if role is not None or disabled else None
        uow.commit()
        log.info("Updated user %s: role=%s disabled=%s", user.id, user.role, user.disabled)
        view = UserView.of(user)
    if revoked_at is not None:
        revoker.revoke(user_id, revoked_at.timestamp())
    return view


def revoke_access_tokens(user: User, clock: Clock) -> datetime:
    """Record on the (locked) user row that their access tokens issued until now are refused.

    Tokens are issued only under the same row lock, with a time taken after it is held (see
    sessions), so a token issued from the user's old state is never newer than the mark and
    one issued from the new state always is. A mark never moves back.
    """
    now = clock()
    user.tokens_revoked_at = max(now, user.tokens_revoked_at or now)
    return user.tokens_revoked_at


def _removes_an_admin(user: User, role: str | None, disabled: bool | None) -> bool:
    active_admin = user.role == "admin" and not user.disabled
    return active_admin and (disabled is True or role not in (None, "admin"))


def profile(uow: UnitOfWork, user_id: int) -> UserView:
    """Return the current state of the token's user, who must still be active."""
    with uow:
        user = uow.users.get(user_id)
        if user is None or user.disabled:
            raise AccountUnavailable(user_id)
        return UserView.of(user)


def authorize(uow: UnitOfWork, user_id: int, permission: str) -> UserView:
    """The caller as they are now: active (else AccountUnavailable) and allowed `permission`."""
    caller = profile(uow, user_id)
    if permission not in ROLE_PERMISSIONS[caller.role]:
        raise NotPermitted(permission)
    return caller


def admin_exists(uow: UnitOfWork) -> bool:
    """True if at least one active admin exists."""
    with uow:
        return bool(uow.users.active_admin_ids())


def make_admin(uow: UnitOfWork, passwords: Argon2Passwords, revoker: TokenRevoker,
               username: str, password: str, clock: Clock = utcnow) -> UserView:
    """Turn an existing user into an active admin with a new password; end their sessions and
    revoke their access tokens."""
    password_hash = passwords.hash(password)  # slow: before the row is locked
    with uow:
        user = uow.users.by_username(username, lock=True)
        if user is None:
            raise UserNotFound(username)
        user.role, user.disabled, user.password_hash = "admin", False, password_hash
        uow.refresh_tokens.revoke_user(user.id, clock())
        revoked_at = revoke_access_tokens(user, clock)
        uow.commit()
        view = UserView.of(user)
    revoker.revoke(view.id, revoked_at.timestamp())
    return view
