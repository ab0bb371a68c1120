"""Fixtures of the auth service's integration tests: a real, freshly migrated database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from services.auth_service.adapters.passwords import Argon2Passwords
from services.auth_service.entrypoints.app import create_app
from shared.settings import CommonSettings
from tests.fakes.passwords import fast_passwords
from tests.unit.auth_service.fakes import common_settings, make_settings


@pytest.fixture
def auth_db(fresh_database: Callable[[str], str]) -> str:
    """URL of a private, migrated auth database."""
    return fresh_database("auth")


@pytest.fixture
def engine(auth_db: str) -> Iterator[Engine]:
    """An engine on the test database, for looking at rows directly."""
    engine = create_engine(auth_db)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def passwords() -> Argon2Passwords:
    """Argon2 with cheap parameters."""
    return fast_passwords()


@pytest.fixture
def common(redis_url: str, namespace: str, redis_client: object) -> CommonSettings:
    """Common settings on the real Redis, in this test's namespace (deleted afterwards)."""
    return common_settings(redis_url=redis_url, namespace=namespace)


@pytest.fixture
def app(tmp_path: Path, auth_db: str, passwords: Argon2Passwords,
        common: CommonSettings) -> Iterator[Flask]:
    """The auth app on the real database and Redis, keys generated under tmp_path."""
    app = create_app(make_settings(tmp_path, auth_db, common=common), passwords=passwords)
    yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def admin(client: FlaskClient, app: Flask, passwords: Argon2Passwords) -> dict[str, str]:
    """Create an admin through the service layer and return its Authorization header."""
    from services.auth_service.service_layer import accounts
    from shared.http import DEPENDENCIES as EXTENSION

    accounts.create_user(app.extensions[EXTENSION].uow(), passwords, "root", "root-password",
                         role="admin")
    return login(client, "root", "root-password")


def login(client: FlaskClient, username: str, password: str) -> dict[str, str]:
    """Log in and return the Authorization header."""
    response = client.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['access_token']}"}
