"""Fixtures of the auth service's unit tests: fakes only, no database."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.auth_service.adapters.keys import StaticKeySource
from services.auth_service.adapters.passwords import Argon2Passwords
from services.auth_service.adapters.tokens import AccessTokenIssuer
from services.auth_service.entrypoints.app import create_app
from services.auth_service.service_layer.sessions import TokenPolicy
from tests.fakes.passwords import fast_passwords
from tests.unit.auth_service.fakes import (
    FakeRevocations,
    FakeUnitOfWork,
    make_settings,
    static_keys,
)


@pytest.fixture
def uow() -> FakeUnitOfWork:
    """An empty in-memory store."""
    return FakeUnitOfWork()


@pytest.fixture
def revocations() -> FakeRevocations:
    """Revocation marks in memory."""
    return FakeRevocations()


@pytest.fixture(scope="session")
def passwords() -> Argon2Passwords:
    """Argon2 with cheap parameters."""
    return fast_passwords()


@pytest.fixture
def keys() -> StaticKeySource:
    """One Ed25519 signing key."""
    return static_keys()


@pytest.fixture
def policy(keys: StaticKeySource) -> TokenPolicy:
    """Token policy over the test key."""
    issuer = AccessTokenIssuer(keys, "taskstream-auth", "taskstream", 900)
    return TokenPolicy(issuer, timedelta(hours=1))


@pytest.fixture
def app(tmp_path: Path, uow: FakeUnitOfWork, keys: StaticKeySource,
        passwords: Argon2Passwords, revocations: FakeRevocations) -> Flask:
    """The auth app over fakes."""
    return create_app(make_settings(tmp_path), uow=uow, keys=keys, passwords=passwords,
                      revocations=revocations)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()
