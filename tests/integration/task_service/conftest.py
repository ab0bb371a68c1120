"""Fixtures of the task service's integration tests: a migrated database, the app, tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from services.task_service.config import RelayConfig, Settings
from services.task_service.entrypoints.app import create_app
from shared.settings import CommonSettings
from testbed.tokens import TokenFactory


@pytest.fixture
def tasks_url(fresh_database: Callable[[str], str]) -> str:
    """URL of a fresh, migrated task database."""
    return fresh_database("tasks")


@pytest.fixture
def engine(tasks_url: str) -> Iterator[Engine]:
    """An engine on the test's task database."""
    engine = create_engine(tasks_url, pool_size=20, max_overflow=20)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(tasks_url: str, redis_url: str, namespace: str) -> Settings:
    """Settings pointing at the test's database and Redis namespace."""
    common = CommonSettings(
        environment="test", redis_url=redis_url, namespace=namespace, log_level="INFO",
        log_format="text", jwt_issuer="taskstream-auth", jwt_audience="taskstream",
        jwt_algorithm="EdDSA", jwks_url="http://127.0.0.1:9/jwks", jwks_refresh_seconds=30.0,
        db_pool_size=5, db_max_overflow=10, db_connect_attempts=3, db_connect_backoff=0.1,
    )
    return Settings(common=common, database_url=tasks_url,
                    relay=RelayConfig(poll_seconds=0.2, namespace=namespace))


@pytest.fixture
def tokens() -> TokenFactory:
    """Mints access tokens the app trusts."""
    return TokenFactory()


@pytest.fixture
def make_app(settings: Settings, engine: Engine, tokens: TokenFactory,
             redis_client: redis.Redis) -> Callable[..., Flask]:
    """Build the app, optionally with other settings."""

    def make(**changes: object) -> Flask:
        app = create_app(replace(settings, **changes), engine=engine,
                         token_verifier=tokens.verifier(), redis_client=redis_client)
        app.config["TESTING"] = True
        return app

    return make


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> FlaskClient:
    """A test client of the task service."""
    return make_app().test_client()
