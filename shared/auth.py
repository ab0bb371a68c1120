"""Access-token verification against the auth service's JWKS, and permission checks."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

import jwt
from flask import Flask, current_app, g, request

from shared.errors import ApiError
from shared.jwks import JwksCache, http_jwks_fetcher
from shared.revocation import RevocationList, redis_revocations
from shared.settings import CommonSettings, TokenSettings

log = logging.getLogger("taskstream.auth")

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "member": frozenset({"task:read", "task:create"}),
    "manager": frozenset({
        "task:read", "task:create", "task:update", "task:delete", "task:import",
    }),
    "admin": frozenset({
        "task:read", "task:create", "task:update", "task:delete", "task:import",
        "task:purge", "audit:read", "user:manage", "ops:transfer", "webhooks:manage",
        "events:read",
    }),
    # Internal consumers (an indexer, a sync bridge): they follow the event feed, nothing else.
    "service": frozenset({"events:read"}),
}
ROLES = ("admin", "manager", "member", "service")
TASK_WRITES = frozenset({"task:update", "task:delete", "task:import", "task:purge"})

AUTHENTICATION_REQUIRED = "Authentication required"
INVALID_TOKEN = "Invalid or expired token"
TASK_WRITE_FORBIDDEN = "You are not allowed to modify tasks"
FORBIDDEN = "Forbidden"


class InvalidToken(Exception):
    """The token is not one we accept."""


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user_id: int
    username: str
    role: str
    token_id: str = ""
    issued_at: float = 0.0  # the token's `iat`, with sub-second precision

    @property
    def permissions(self) -> frozenset[str]:
        """The permissions of the caller's role."""
        return ROLE_PERMISSIONS.get(self.role, frozenset())

    def can(self, permission: str) -> bool:
        """True if the caller's role grants `permission`."""
        return permission in self.permissions


@dataclass(frozen=True)
class VerifiedToken:
    """What a full check of a token established."""

    principal: Principal
    kid: str
    expires_at: float  # `exp` plus the leeway


class VerifiedTokens:
    """Tokens already verified, kept until they expire (a bounded LRU).

    A token's signature, issuer and audience cannot change, and its `nbf` has passed once it
    verified, so what is left to check on a later request is `exp`, whether its key is still
    published, and whether it was revoked (TokenVerifier does the last two).
    """

    def __init__(self, capacity: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self.capacity = capacity
        self.clock = clock
        self.entries: OrderedDict[str, VerifiedToken] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, token: str) -> VerifiedToken | None:
        """What a verified, unexpired token established."""
        with self.lock:
            found = self.entries.get(token)
            if found is None:
                return None
            if found.expires_at <= self.clock():
                del self.entries[token]
                return None
            self.entries.move_to_end(token)
            return found

    def put(self, token: str, verified: VerifiedToken) -> None:
        """Remember a token that just verified."""
        with self.lock:
            self.entries[token] = verified
            self.entries.move_to_end(token)
            while len(self.entries) > self.capacity:
                self.entries.popitem(last=False)


class TokenVerifier:
    """Checks signature, algorithm, `exp`, `nbf`, `iat`, `iss`, `aud`, the token's lifetime
    and, given a revocation list, that the token was not revoked."""

    def __init__(self, keys: JwksCache, issuer: str, audience: str, algorithm: str,
                 verified: VerifiedTokens | None = None, *,
                 rules: TokenSettings | None = None,
                 revocations: RevocationList | None = None) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.algorithm = algorithm
        self.verified = verified if verified is not None else VerifiedTokens()
        self.rules = rules or TokenSettings()
        self.revocations = revocations

    def verify(self, token: str) -> Principal:
        """Return the principal a valid token names, or raise InvalidToken."""
        known = self.verified.get(token)
        if known is None or not self.keys.trusts(known.kid):
            known = self._verify_in_full(token)
        principal = known.principal
        if self.revocations is not None and self.revocations.revoked(principal.user_id,
                                                                     principal.issued_at):
            raise InvalidToken(f"revoked: token of user {principal.user_id}")
        return principal

    def _verify_in_full(self, token: str) -> VerifiedToken:
        kid, claims = self._check(token)
        verified = VerifiedToken(_principal(claims), kid,
                                 float(claims["exp"]) + self.rules.leeway_seconds)
        self.verified.put(token, verified)
        return verified

    def _check(self, token: str) -> tuple[str, dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        if header.get("alg") != self.algorithm or not header.get("kid"):
            raise InvalidToken("unexpected algorithm or missing kid")
        kid = str(header["kid"])
        key = self.keys.key(kid)
        if key is None:
            raise InvalidToken(f"unknown kid {kid!r}")
        try:
            claims = jwt.decode(
                token, key, algorithms=[self.algorithm],
                audience=self.audience, issuer=self.issuer, leeway=self.rules.leeway_seconds,
                options={"require": ["exp", "iat", "sub", "iss", "aud", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        lifetime = float(claims["exp"]) - float(claims["iat"])
        if lifetime > self.rules.max_lifetime:
            raise InvalidToken(f"lifetime of {lifetime:.0f} s is over the maximum")
        return kid, claims


def jwks_verifier(common: CommonSettings) -> TokenVerifier:
    """A verifier of the auth service's tokens, fetching its JWKS over HTTP and checking
    revocation marks in this deployment's Redis."""
    keys = JwksCache(http_jwks_fetcher(common.jwks_url), common.jwks_refresh_seconds,
                     common.tokens.jwks_max_age_seconds)
    return TokenVerifier(keys, common.jwt_issuer, common.jwt_audience, common.jwt_algorithm,
                         rules=common.tokens, revocations=revocation_list(common))


def revocation_list(common: CommonSettings) -> RevocationList | None:
    """The revocation marks of this deployment, or None when the check is switched off."""
    if not common.tokens.revocation_check:
        return None
    return RevocationList(redis_revocations(common))


def _principal(claims: dict[str, Any]) -> Principal:
    try:
        return Principal(
            user_id=int(claims["sub"]), username=str(claims.get("username", "")),
            role=str(claims["role"]), token_id=str(claims["jti"]),
            issued_at=float(claims["iat"]),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise InvalidToken(f"bad claims: {exc}") from exc


VERIFIER = "token_verifier"


def use_verifier(app: Flask, verifier: TokenVerifier) -> None:
    """Verify the bearer tokens of `app`'s requests with `verifier`."""
    app.extensions[VERIFIER] = verifier


def app_verifier() -> TokenVerifier:
    """The verifier of the current app."""
    verifier: TokenVerifier = current_app.extensions[VERIFIER]
    return verifier


def bearer_token() -> str | None:
    """Return the bearer token of the current request, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate() -> Principal:
    """Verify the request's token with the app's verifier; raise the contract's 401s."""
    if "principal" in g:
        return g.principal  # type: ignore[no-any-return]
    token = bearer_token()
    if token is None:
        raise ApiError(401, AUTHENTICATION_REQUIRED)
    try:
        g.principal = app_verifier().verify(token)
    except InvalidToken as exc:
        log.info("rejected token: %s", exc)
        raise ApiError(401, INVALID_TOKEN) from None
    return g.principal  # type: ignore[no-any-return]


F = TypeVar("F", bound=Callable[..., Any])


def requires(permission: str) -> Callable[[F], F]:
    """Allow the view only to callers whose role grants `permission`."""

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            principal = authenticate()
            if not principal.can(permission):
                message = TASK_WRITE_FORBIDDEN if permission in TASK_WRITES else FORBIDDEN
                raise ApiError(403, message)
            return view(*args, **kwargs)

        guarded.required_permission = permission  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate
