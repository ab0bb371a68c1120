"""Access tokens (EdDSA JWTs) and refresh-token secrets."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from services.auth_service.adapters.keys import KeySource


@dataclass(frozen=True)
class AccessTokenIssuer:
    """Signs short-lived access tokens with the current signing key."""

    keys: KeySource
    issuer: str
    audience: str
    ttl_seconds: int
    clock: Callable[[], float] = time.time

    def issue(self, user_id: int, username: str, role: str,
              issued_at: float | None = None) -> str:
        """Return a signed token naming the user and their role.

        `iat` keeps its fraction of a second, so that a revocation mark set within the same
        second tells the tokens issued before it from those issued after it.
        """
        now = self.clock() if issued_at is None else issued_at
        claims = {
            "sub": str(user_id), "username": username, "role": role,
            "iss": self.issuer, "aud": self.audience, "iat": now, "nbf": int(now),
            "exp": int(now) + self.ttl_seconds, "jti": uuid.uuid4().hex,
        }
        signer = self.keys.current().signer
        return jwt.encode(claims, signer.private_key, algorithm="EdDSA",
                          headers={"kid": signer.kid, "typ": "JWT"})


def new_refresh_secret() -> str:
    """A fresh opaque refresh token (256 random bits)."""
    return secrets.token_urlsafe(32)


def refresh_digest(secret: str) -> str:
    """What is stored of a refresh token: its SHA-256 (the token itself is random enough)."""
    return hashlib.sha256(secret.encode()).hexdigest()
