"""Who the client is behind proxies, and limits on logins per address and per username."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask, Response, jsonify, request
from flask.testing import FlaskClient

from services.api_gateway.entrypoints.app import create_app
from testbed.tokens import TokenFactory
from tests.integration.api_gateway.test_gateway import gateway_settings
from tests.stub_upstream import echo_app, serve

TOO_MANY = {"error": "Too many requests, please try again later."}


def login_app() -> Flask:
    """The echo upstream, whose /auth/login takes the password "right" and no other."""
    app = echo_app()

    @app.post("/auth/login")
    def login() -> tuple[Response, int]:
        body = request.get_data()
        if b'"username": "' not in body:
            return jsonify({"error": "Field 'username' is required"}), 422
        if b'"password": "right"' in body:
            return jsonify({"access_token": "a", "refresh_token": "r"}), 200
        return jsonify({"error": "Invalid username or password"}), 401

    return app


@pytest.fixture
def upstream_url() -> Iterator[str]:
    with serve(login_app()) as url:
        yield url


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch, redis_url: str, namespace: str,
            upstream_url: str):  # type: ignore[no-untyped-def]
    """Factory: a gateway test client with some settings changed."""

    def make(**changes: object) -> FlaskClient:
        settings = gateway_settings(monkeypatch, redis_url, namespace, upstream_url, **changes)
        return create_app(settings, verifier=TokenFactory().verifier()).test_client()

    return make


def log_in(client: FlaskClient, password: str = "right", username: str = "ann",
           address: str = "127.0.0.1", **headers: str) -> int:
    """Status of one login from `address` (the socket's peer)."""
    return client.post("/auth/login", json={"username": username, "password": password},
                       headers=headers, environ_base={"REMOTE_ADDR": address}).status_code


def test_without_trusted_proxies_a_forged_forwarded_for_changes_nothing(gateway) -> None:
    client = gateway()
    statuses = [log_in(client, **{"X-Forwarded-For": f"198.51.100.{n}"}) for n in range(12)]
    assert statuses == [200] * 10 + [429] * 2


def test_behind_one_trusted_proxy_the_last_hop_is_the_client(gateway) -> None:
    client = gateway(trusted_proxies=1)
    statuses = [log_in(client, **{"X-Forwarded-For": f"198.51.100.{n}"}) for n in range(12)]
    assert statuses == [200] * 12  # twelve clients, one login each


def test_behind_one_trusted_proxy_extra_hops_cannot_be_added(gateway) -> None:
    client = gateway(trusted_proxies=1)
    forged = [f"198.51.100.{n}, 203.0.113.9" for n in range(12)]
    statuses = [log_in(client, **{"X-Forwarded-For": chain}) for chain in forged]
    assert statuses == [200] * 10 + [429] * 2


@pytest.mark.parametrize(("hops", "sent", "seen"), [
    (0, "198.51.100.1", "10.0.0.2"),
    (1, "198.51.100.1, 203.0.113.9", "203.0.113.9, 10.0.0.2"),
    (2, "198.51.100.1, 203.0.113.9, 10.1.1.1", "203.0.113.9, 10.1.1.1, 10.0.0.2"),
])
def test_the_upstream_hears_the_client_and_the_trusted_hops_only(gateway, hops: int,
                                                                 sent: str, seen: str) -> None:
    client = gateway(trusted_proxies=hops)
    tokens = TokenFactory()
    client.application.extensions["token_verifier"] = tokens.verifier()
    response = client.get("/tasks", headers={**tokens.headers(), "X-Forwarded-For": sent},
                          environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert response.get_json()["headers"]["X-Forwarded-For"] == seen


def test_failed_logins_for_one_username_are_limited_across_addresses(gateway) -> None:
    client = gateway(rate_limit_login_username="3/minute")
    statuses = [log_in(client, "guess", "victim", f"10.0.1.{n}") for n in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    limited = client.post("/auth/login", json={"username": "VICTIM", "password": "right"},
                          environ_base={"REMOTE_ADDR": "10.0.2.1"})
    assert limited.status_code == 429 and limited.get_json() == TOO_MANY
    assert int(limited.headers["Retry-After"]) > 0
    assert log_in(client, "guess", "bystander", "10.0.2.2") == 401


def test_successful_logins_never_count_against_the_username(gateway) -> None:
    client = gateway(rate_limit_login_username="3/minute")
    statuses = [log_in(client, "right", "ann", f"10.0.3.{n}") for n in range(6)]
    assert statuses == [200] * 6
    assert [log_in(client, "guess", "ann", "10.0.4.1") for _ in range(3)] == [401] * 3


@pytest.mark.parametrize("body", [b"[" * 100_000, b"not json", b'{"username": 5}'])
def test_a_body_without_a_username_still_counts_against_the_address(gateway,
                                                                   body: bytes) -> None:
    client = gateway(rate_limit_login="2/minute", rate_limit_login_username="1/minute")
    statuses = [client.post("/auth/login", data=body,
                            headers={"Content-Type": "application/json"}).status_code
                for _ in range(3)]
    assert statuses == [422, 422, 429]  # the upstream's answer, never a 500 or no limit


def test_the_login_limit_is_per_address_whatever_token_comes_with_it(gateway) -> None:
    client = gateway(rate_limit_login="2/minute")
    tokens = TokenFactory()
    client.application.extensions["token_verifier"] = tokens.verifier()
    statuses = [log_in(client, Authorization=f"Bearer {tokens.token(user_id=n)}")
                for n in range(1, 5)]
    assert statuses == [200, 200, 429, 429]
