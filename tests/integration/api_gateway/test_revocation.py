"""The gateway refuses revoked tokens within seconds, and fails closed without Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from services.api_gateway.entrypoints.app import create_app
from services.embedded import free_port
from shared.revocation import KEY_SUFFIX, RedisRevocations, RevocationList
from testbed.polling import wait_for
from testbed.tokens import TokenFactory
from tests.integration.api_gateway.test_gateway import gateway_settings
from tests.stub_upstream import echo_app, serve


@pytest.fixture
def upstream() -> Iterator[str]:
    app: Flask = echo_app()
    with serve(app) as url:
        yield url


def gateway(monkeypatch: pytest.MonkeyPatch, redis_url: str, namespace: str, upstream: str,
            tokens: TokenFactory) -> tuple[FlaskClient, RedisRevocations]:
    """A gateway checking the revocation marks kept in `redis_url`."""
    marks = RedisRevocations(redis.Redis.from_url(redis_url, socket_timeout=0.5,
                                                  socket_connect_timeout=0.5),
                             f"{namespace}:{KEY_SUFFIX}", lifetime=930)
    settings = gateway_settings(monkeypatch, redis_url, namespace, upstream)
    app = create_app(settings, verifier=tokens.verifier(RevocationList(marks)))
    return app.test_client(), marks


def test_a_revoked_token_is_refused_within_seconds_and_a_newer_one_works(
        monkeypatch: pytest.MonkeyPatch, redis_url: str, namespace: str, upstream: str,
        redis_client: redis.Redis) -> None:
    tokens = TokenFactory()
    client, marks = gateway(monkeypatch, redis_url, namespace, upstream, tokens)
    old = tokens.headers(user_id=12)
    assert client.get("/tasks", headers=old).status_code == 200
    marks.revoke(12, time.time())
    wait_for(lambda: client.get("/tasks", headers=old).status_code == 401, timeout=5,
             what="the revoked token to be refused")
    assert client.get("/tasks", headers=old).get_json() == {"error": "Invalid or expired token"}
    newer = tokens.headers(user_id=12, iat=time.time())
    assert client.get("/tasks", headers=newer).status_code == 200
    assert client.get("/tasks", headers=tokens.headers(user_id=13)).status_code == 200


def test_without_redis_tokens_are_not_trusted_but_public_routes_work(
        monkeypatch: pytest.MonkeyPatch, namespace: str, upstream: str) -> None:
    tokens = TokenFactory()
    dead = f"redis://127.0.0.1:{free_port()}/0"
    client, _ = gateway(monkeypatch, dead, namespace, upstream, tokens)
    response = client.get("/tasks", headers=tokens.headers())
    assert response.status_code == 503
    assert response.get_json() == {"error": "Service temporarily unavailable, please retry"}
    assert response.headers["Retry-After"] == "1"
    login = client.post("/auth/login", json={"username": "ann", "password": "x"})
    assert login.status_code == 201  # the echo upstream's answer
