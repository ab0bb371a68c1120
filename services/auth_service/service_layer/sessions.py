"""Session use cases: log in, refresh with rotation and reuse detection, log out.

A login starts a refresh-token *family*. Each refresh marks the presented token used and
issues the next one in the same family. Presenting a used token again means two parties hold
the family (one of them a thief), so the whole family is revoked.

Every use case that issues or revokes a user's tokens first locks the user's row, and takes
its time only once it holds it: they happen one after the other for one user, and always
lock the user before any of their refresh tokens (so two of them never wait for each other).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.auth_service.adapters.orm import RefreshToken, User
from services.auth_service.adapters.passwords import Argon2Passwords
from services.auth_service.adapters.tokens import (
    AccessTokenIssuer,
    new_refresh_secret,
    refresh_digest,
)
from services.auth_service.service_layer.accounts import Clock, revoke_access_tokens, utcnow
from services.auth_service.service_layer.errors import InvalidCredentials, InvalidRefreshToken
from services.auth_service.service_layer.unit_of_work import UnitOfWork
from shared.revocation import TokenRevoker

log = logging.getLogger("taskstream.auth.sessions")


@dataclass(frozen=True)
class TokenPair:
    """What a login or refresh returns."""

    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


@dataclass(frozen=True)
class TokenPolicy:
    """How tokens are made: the access-token signer and the refresh-token lifetime."""

    access: AccessTokenIssuer
    refresh_ttl: timedelta
    clock: Clock = utcnow


def login(uow: UnitOfWork, passwords: Argon2Passwords, policy: TokenPolicy,
          username: str, password: str) -> TokenPair:
    """Check the credentials and start a new refresh family."""
    with uow:
        user = uow.users.by_username(username, lock=True)
        started = policy.clock()
        if user is None:
            passwords.verify_decoy(password)
            log.info("Login refused: unknown user %r", username)
            raise InvalidCredentials()
        if not passwords.verify(user.password_hash, password) or user.disabled:
            log.info("Login refused for user %s", user.id)
            raise InvalidCredentials()
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = passwords.hash(password)
        pair = _issue(uow, policy, user, uuid.uuid4(), started)
        uow.commit()
        log.info("User %s logged in", user.id)
        return pair


def refresh(uow: UnitOfWork, policy: TokenPolicy, secret: str) -> TokenPair:
    """Trade a refresh token for a new pair; a reused token revokes its whole family."""
    with uow:
        user, token = _locked_owner(uow, secret)
        now = policy.clock()
        if token is None or token.revoked_at is not None or token.expires_at <= now:
            raise InvalidRefreshToken()
        if token.used_at is not None or user is None or user.disabled:
            _revoke_family(uow, token, now, reused=token.used_at is not None)
            raise InvalidRefreshToken()
        token.used_at = now
        pair = _issue(uow, policy, user, token.family_id, now)
        uow.commit()
        return pair


def logout(uow: UnitOfWork, policy: TokenPolicy, secret: str) -> None:
    """End the session (family) of a refresh token; unknown tokens are ignored."""
    with uow:
        _, token = _locked_owner(uow, secret)
        if token is not None:
            uow.refresh_tokens.revoke_family(token.family_id, policy.clock())
            uow.commit()


def logout_everywhere(uow: UnitOfWork, policy: TokenPolicy, revoker: TokenRevoker,
                      secret: str) -> None:
    """End every session of the refresh token's user and refuse their access tokens.

    Any unexpired token of the user will do, even one already used or revoked; unknown
    tokens are ignored. The mark is recorded on the user row in the same transaction.
    """
    with uow:
        user, token = _locked_owner(uow, secret)
        now = policy.clock()
        if user is None or token is None or token.expires_at <= now:
            return
        uow.refresh_tokens.revoke_user(user.id, now)
        revoked_at = revoke_access_tokens(user, policy.clock)
        uow.commit()
    revoker.revoke(user.id, revoked_at.timestamp())
    log.info("User %s logged out everywhere", user.id)


def _locked_owner(uow: UnitOfWork, secret: str) -> tuple[User | None, RefreshToken | None]:
    """The refresh token's user, locked (see the module docstring), then the token itself."""
    digest = refresh_digest(secret)
    owner = uow.refresh_tokens.owner_of(digest)
    user = uow.users.get(owner, lock=True) if owner is not None else None
    return user, uow.refresh_tokens.by_hash(digest)


def _revoke_family(uow: UnitOfWork, token: RefreshToken, now: datetime, reused: bool) -> None:
    uow.refresh_tokens.revoke_family(token.family_id, now)
    uow.commit()
    if reused:
        log.warning("Refresh token reused; family %s of user %s revoked",
                    token.family_id, token.user_id)


def _issue(uow: UnitOfWork, policy: TokenPolicy, user: User, family_id: uuid.UUID,
           now: datetime) -> TokenPair:
    """A new pair; `now` was taken under the user's row lock, which a revocation relies on."""
    secret = new_refresh_secret()
    uow.refresh_tokens.add(RefreshToken(
        user_id=user.id, family_id=family_id, token_hash=refresh_digest(secret),
        issued_at=now, expires_at=now + policy.refresh_ttl))
    access = policy.access.issue(user.id, user.username, user.role, now.timestamp())
    return TokenPair(access, secret, policy.access.ttl_seconds)
