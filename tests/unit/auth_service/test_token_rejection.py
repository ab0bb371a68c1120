"""/auth/me accepts only tokens that our key signed, with EdDSA, in time, for us."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from services.auth_service.adapters.keys import SigningKey, StaticKeySource
from services.auth_service.adapters.tokens import AccessTokenIssuer
from services.auth_service.service_layer import accounts
from tests.unit.auth_service.fakes import signing_key

INVALID = {"error": "Invalid or expired token"}


@pytest.fixture
def user(uow, passwords) -> accounts.UserView:
    """The user the tokens name."""
    return accounts.create_user(uow, passwords, "erin", "long enough", role="member")


@pytest.fixture
def key(keys: StaticKeySource) -> SigningKey:
    """The app's signing key."""
    return keys.current().signer


def claims_for(user: accounts.UserView, **changes: Any) -> dict[str, Any]:
    """Valid claims, with changes."""
    now = int(time.time())
    claims = {"sub": str(user.id), "username": user.username, "role": user.role,
              "iss": "taskstream-auth", "aud": "taskstream", "iat": now, "nbf": now,
              "exp": now + 300, "jti": uuid.uuid4().hex}
    claims.update(changes)
    return claims


def sign(claims: dict[str, Any], key: SigningKey, kid: str | None = None) -> str:
    """An EdDSA token."""
    return jwt.encode(claims, key.private_key, algorithm="EdDSA",
                      headers={"kid": kid or key.kid})


def b64(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """`header.payload` of a hand-made token."""
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"


def me(client, token: str):
    """Call /auth/me with a bearer token."""
    return client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})


def test_a_valid_token_is_accepted(client, user, key):
    response = me(client, sign(claims_for(user), key))
    assert response.status_code == 200
    assert response.json == {"id": user.id, "username": "erin", "role": "member",
                             "permissions": ["task:create", "task:read"]}


def test_the_issuer_makes_tokens_the_app_accepts(client, user, keys):
    token = AccessTokenIssuer(keys, "taskstream-auth", "taskstream", 60).issue(
        user.id, user.username, user.role)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA" and header["kid"] == keys.current().signer.kid
    assert me(client, token).status_code == 200


def test_missing_token_needs_authentication(client):
    response = client.get("/auth/me")
    assert response.status_code == 401
    assert response.json == {"error": "Authentication required"}


def test_alg_none_is_refused(client, user, key):
    token = unsigned({"alg": "none", "kid": key.kid, "typ": "JWT"}, claims_for(user)) + "."
    response = me(client, token)
    assert response.status_code == 401 and response.json == INVALID


@pytest.mark.parametrize("secret_form", ["pem", "raw"])
def test_hs256_signed_with_the_public_key_is_refused(client, user, key, secret_form):
    public = key.private_key.public_key()
    secret = (public.public_bytes(serialization.Encoding.PEM,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
              if secret_form == "pem" else
              public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    body = unsigned({"alg": "HS256", "kid": key.kid, "typ": "JWT"},
                    claims_for(user, role="admin"))
    signature = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    response = me(client, f"{body}.{b64(signature)}")
    assert response.status_code == 401 and response.json == INVALID


def test_tampered_payload_is_refused(client, user, key):
    header, _payload, signature = sign(claims_for(user), key).split(".")
    forged = b64(json.dumps(claims_for(user, sub="999", role="admin")).encode())
    response = me(client, f"{header}.{forged}.{signature}")
    assert response.status_code == 401 and response.json == INVALID


def test_expired_token_is_refused(client, user, key):
    past = int(time.time()) - 3600
    token = sign(claims_for(user, iat=past, nbf=past, exp=past + 900), key)
    assert me(client, token).status_code == 401


def test_token_from_an_issuer_clock_in_the_past_is_expired(client, user, keys):
    issuer = AccessTokenIssuer(keys, "taskstream-auth", "taskstream", 900,
                               clock=lambda: time.time() - 1000)
    assert me(client, issuer.issue(user.id, user.username, user.role)).status_code == 401


def test_token_not_yet_valid_is_refused(client, user, key):
    token = sign(claims_for(user, nbf=int(time.time()) + 600), key)
    response = me(client, token)
    assert response.status_code == 401 and response.json == INVALID


def test_unknown_kid_is_refused(client, user):
    stranger = signing_key("somebody-elses-key")
    response = me(client, sign(claims_for(user), stranger))
    assert response.status_code == 401 and response.json == INVALID


def test_other_key_under_our_kid_is_refused(client, user, key):
    impostor = signing_key(key.kid)
    assert me(client, sign(claims_for(user), impostor)).status_code == 401


@pytest.mark.parametrize("claim", [{"iss": "someone-else"}, {"aud": "another-system"}])
def test_wrong_issuer_or_audience_is_refused(client, user, key, claim):
    response = me(client, sign(claims_for(user, **claim), key))
    assert response.status_code == 401 and response.json == INVALID


def test_token_of_a_disabled_user_no_longer_shows_the_profile(client, uow, user, key, revocations):
    token = sign(claims_for(user), key)
    accounts.update_user(uow, revocations, user.id, disabled=True)
    response = me(client, token)
    assert response.status_code == 401 and response.json == INVALID


def test_a_token_living_longer_than_the_access_token_ttl_is_refused(client, user, key):
    now = int(time.time())
    response = me(client, sign(claims_for(user, iat=now, exp=now + 3600), key))
    assert response.status_code == 401 and response.json == INVALID
