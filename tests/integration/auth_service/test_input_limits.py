"""Hostile input to the auth service is refused with the contract's error, never a 500."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from services.auth_service.adapters.passwords import Argon2Passwords
from services.auth_service.entrypoints.app import create_app
from tests.statements import recorded_statements
from tests.unit.auth_service.fakes import make_settings


@pytest.fixture
def app(tmp_path: Path, auth_db: str, passwords: Argon2Passwords, engine: Engine) -> Flask:
    """The auth app on the test's engine, so that the statements it sends can be seen."""
    return create_app(make_settings(tmp_path, auth_db), passwords=passwords, engine=engine)


@pytest.mark.parametrize("user_id", ["99999999999999999999", "9223372036854775808", "0"])
def test_a_user_id_outside_bigint_is_404_without_a_query(
        client: FlaskClient, admin: dict[str, str], engine: Engine, user_id: str) -> None:
    with recorded_statements(engine) as sent:
        response = client.patch(f"/auth/users/{user_id}", json={"disabled": True},
                                headers=admin)
    assert (response.status_code, response.get_json()) == (404, {"error": "Not found"})
    assert sent == []


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 100_000], ids=["arrays", "objects"])
def test_deeply_nested_json_is_400(client: FlaskClient, body: bytes) -> None:
    for path in ("/auth/login", "/auth/register", "/auth/refresh"):
        response = client.post(path, data=body, content_type="application/json")
        assert (response.status_code, response.get_json()) == (
            400, {"error": "Request body nests JSON deeper than 32 levels"}), path
