"""Access-token verification against the auth service's JWKS, and permission checks."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

import jwt
import requests
from flask import current_app, g, request

from shared.config import CommonSettings
from shared.errors import ApiError

log = logging.getLogger("taskstream.auth")

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "member": frozenset({"task:read", "task:create"}),
    "manager": frozenset({
        "task:read", "task:create", "task:update", "task:delete", "task:import",
    }),
    "admin": frozenset({
        "task:read", "task:create", "task:update", "task:delete", "task:import",
        "task:purge", "audit:read", "user:manage", "ops:transfer",
    }),
}
ROLES = ("admin", "manager", "member")
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

    @property
    def permissions(self) -> frozenset[str]:
        """The permissions of the caller's role."""
        return ROLE_PERMISSIONS.get(self.role, frozenset())

    def can(self, permission: str) -> bool:
        """True if the caller's role grants `permission`."""
        return permission in self.permissions


KeyFetcher = Callable[[], dict[str, Any]]


def http_jwks_fetcher(url: str, timeout: float = 3.0) -> KeyFetcher:
    """Return a function that downloads a JWKS document."""
    session = requests.Session()

    def fetch() -> dict[str, Any]:
        response = session.get(url, timeout=timeout)
        response.raise_for_status()
        return dict(response.json())

    return fetch


class JwksCache:
    """Public keys by `kid`, refetched on an unknown kid at most once per interval."""

    def __init__(self, fetch: KeyFetcher, min_refresh_seconds: float = 30.0) -> None:
        self.fetch = fetch
        self.min_refresh_seconds = min_refresh_seconds
        self.keys: dict[str, Any] = {}
        self.fetched_at = float("-inf")
        self.lock = threading.Lock()

    def key(self, kid: str) -> Any:
        """Return the public key for `kid`, or raise InvalidToken."""
        found = self.keys.get(kid)
        if found is None:
            self.refresh()
            found = self.keys.get(kid)
        if found is None:
            raise InvalidToken(f"unknown kid {kid!r}")
        return found

    def refresh(self, force: bool = False) -> None:
        """Refetch the JWKS unless it was fetched within the interval."""
        with self.lock:
            if not force and time.monotonic() - self.fetched_at < self.min_refresh_seconds:
                return
            self.fetched_at = time.monotonic()
            try:
                document = self.fetch()
            except Exception as exc:  # the keys we hold stay valid
                log.warning("could not fetch JWKS: %s", exc)
                return
            self.keys = {
                jwk["kid"]: jwt.PyJWK.from_dict(jwk).key
                for jwk in document.get("keys", []) if "kid" in jwk
            }


class VerifiedTokens:
    """Tokens already verified, kept until they expire (a bounded LRU).

    A token's signature, issuer and audience cannot change, and its `nbf` has passed once it
    verified, so the only thing left to check on a later request is `exp`.
    """

    def __init__(self, capacity: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self.capacity = capacity
        self.clock = clock
        self.entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, token: str) -> Principal | None:
        """The principal of a verified, unexpired token."""
        with self.lock:
            found = self.entries.get(token)
            if found is None:
                return None
            if found[0] <= self.clock():
                del self.entries[token]
                return None
            self.entries.move_to_end(token)
            return found[1]

    def put(self, token: str, expires_at: float, principal: Principal) -> None:
        """Remember a token that just verified."""
        with self.lock:
            self.entries[token] = (expires_at, principal)
            self.entries.move_to_end(token)
            while len(self.entries) > self.capacity:
                self.entries.popitem(last=False)


class TokenVerifier:
    """Checks signature, algorithm, `exp`, `nbf`, `iss` and `aud` of access tokens."""

    def __init__(self, keys: JwksCache, issuer: str, audience: str, algorithm: str,
                 verified: VerifiedTokens | None = None) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.algorithm = algorithm
        self.verified = verified if verified is not None else VerifiedTokens()

    def verify(self, token: str) -> Principal:
        """Return the principal a valid token names, or raise InvalidToken."""
        known = self.verified.get(token)
        if known is not None:
            return known
        claims = self._check(token)
        principal = _principal(claims)
        self.verified.put(token, float(claims["exp"]), principal)
        return principal

    def _check(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        if header.get("alg") != self.algorithm or not header.get("kid"):
            raise InvalidToken("unexpected algorithm or missing kid")
        key = self.keys.key(str(header["kid"]))
        try:
            claims = jwt.decode(
                token, key, algorithms=[self.algorithm], audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        return claims


def jwks_verifier(common: CommonSettings) -> TokenVerifier:
    """A verifier of the auth service's tokens, fetching its JWKS over HTTP."""
    keys = JwksCache(http_jwks_fetcher(common.jwks_url), common.jwks_refresh_seconds)
    return TokenVerifier(keys, common.jwt_issuer, common.jwt_audience, common.jwt_algorithm)


def _principal(claims: dict[str, Any]) -> Principal:
    try:
        return Principal(
            user_id=int(claims["sub"]), username=str(claims.get("username", "")),
            role=str(claims["role"]), token_id=str(claims["jti"]),
        )
    except (KeyError, ValueError) as exc:
        raise InvalidToken(f"bad claims: {exc}") from exc


def static_jwks(document: dict[str, Any] | str) -> KeyFetcher:
    """Return a fetcher of a fixed JWKS (tests and single-process tools)."""
    parsed = json.loads(document) if isinstance(document, str) else document
    return lambda: parsed


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
    verifier: TokenVerifier = current_app.extensions["token_verifier"]
    try:
        g.principal = verifier.verify(token)
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
