"""Signing keys and access tokens for tests and benchmarks of services that verify tokens."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.auth import TokenVerifier
from shared.jwks import JwksCache
from shared.revocation import RevocationList

ISSUER = "taskstream-auth"
AUDIENCE = "taskstream"


@dataclass
class TokenFactory:
    """An Ed25519 key pair, its JWKS, and a way to mint tokens with any claims."""

    kid: str = "test-key"
    private_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def jwks(self) -> dict[str, Any]:
        """The public JWKS document."""
        jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update({"kid": self.kid, "alg": "EdDSA", "use": "sig"})
        return {"keys": [jwk]}

    def verifier(self, revocations: RevocationList | None = None) -> TokenVerifier:
        """A verifier that trusts this factory's key (and checks `revocations`, if given)."""
        document = self.jwks()
        return TokenVerifier(JwksCache(lambda: document), ISSUER, AUDIENCE, "EdDSA",
                             revocations=revocations)

    def token(self, user_id: int = 1, role: str = "admin", username: str = "admin",
              **overrides: Any) -> str:
        """Mint an access token; `overrides` replace or add claims (None removes one)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": str(user_id), "username": username, "role": role, "iss": ISSUER,
            "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 900, "jti": uuid.uuid4().hex,
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.private_key, algorithm="EdDSA", headers={"kid": self.kid})

    def headers(self, role: str = "admin", **claims: Any) -> dict[str, str]:
        """An Authorization header for a user of `role`."""
        return {"Authorization": f"Bearer {self.token(role=role, **claims)}"}
