"""Session use cases: log in, refresh with rotation and reuse detection, log out.

A login starts a refresh-token *family*. Each refresh marks the presented token used and
issues the next one in the same family. Presenting a used token again means two parties hold
the family (one of them a thief), so the whole family is revoked.
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
from services.auth_service.service_layer.accounts import Clock, utcnow
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
    started = policy.clock()
    with uow:
        user = uow.users.by_username(username)
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
    now = policy.clock()
    with uow:
        token = uow.refresh_tokens.by_hash(refresh_digest(secret))
        if token is None or token.revoked_at is not None or token.expires_at <= now:
            raise InvalidRefreshToken()
        user = uow.users.get(token.user_id)
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
        token = uow.refresh_tokens.by_hash(refresh_digest(secret))
        if token is not None:
            uow.refresh_tokens.revoke_family(token.family_id, policy.clock())
            uow.commit()


def logout_everywhere(uow: UnitOfWork, policy: TokenPolicy, revoker: TokenRevoker,
                      secret: str) -> None:
    """End every session of the refresh token's user and refuse their access tokens.

    Any unexpired token of the user will do, even one already used or revoked, so that a
    retry after a failed revocation still reaches it; unknown tokens are ignored.
    """
    now = policy.clock()
    with uow:
        token = uow.refresh_tokens.by_hash(refresh_digest(secret))
        if token is None or token.expires_at <= now:
            return
        uow.refresh_tokens.revoke_user(token.user_id, now)
        uow.commit()
    revoker.revoke(token.user_id)
    log.info("User %s logged out everywhere", token.user_id)


def _revoke_family(uow: UnitOfWork, token: RefreshToken, now: datetime, reused: bool) -> None:
    uow.refresh_tokens.revoke_family(token.family_id, now)
    uow.commit()
    if reused:
        log.warning("Refresh token reused; family %s of user %s revoked",
                    token.family_id, token.user_id)


def _issue(uow: UnitOfWork, policy: TokenPolicy, user: User, family_id: uuid.UUID,
           now: datetime) -> TokenPair:
    """A new pair; `now` is from before the user was read, which a revocation relies on."""
    secret = new_refresh_secret()
    uow.refresh_tokens.add(RefreshToken(
        user_id=user.id, family_id=family_id, token_hash=refresh_digest(secret),
        issued_at=now, expires_at=now + policy.refresh_ttl))
    access = policy.access.issue(user.id, user.username, user.role, now.timestamp())
    return TokenPair(access, secret, policy.access.ttl_seconds)
