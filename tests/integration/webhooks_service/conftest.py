"""Fixtures of the webhooks service's integration tests: its database, its API, and the
`webhooks` process's loops with a receiver on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from services.webhooks_service.config import Settings
from services.webhooks_service.entrypoints.app import create_app
from shared.config import Env
from testbed.receiver import Receiver
from testbed.tokens import TokenFactory
from tests.fakes.bus import PublishingRedisBus
from tests.integration.webhooks_service.delivery_kit import Kit, running, settings

TOKENS = TokenFactory()


@pytest.fixture
def webhooks_url(fresh_database: Callable[[str], str]) -> str:
    """A migrated webhooks database."""
    return fresh_database("webhooks")


@pytest.fixture
def engine(webhooks_url: str) -> Iterator[Engine]:
    """An engine on the webhooks database."""
    engine = create_engine(webhooks_url)
    yield engine
    engine.dispose()


def api_client(engine: Engine, redis_client: redis.Redis, namespace: str,
               monkeypatch: pytest.MonkeyPatch, **env: str) -> FlaskClient:
    """A test client of the subscriptions API on the test's database and namespace."""
    monkeypatch.setenv("REDIS_URL", "redis://unused")
    monkeypatch.setenv("REDIS_NAMESPACE", namespace)
    monkeypatch.setenv("WEBHOOKS_DATABASE_URL", "postgresql://unused@127.0.0.1/unused")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings.from_env(Env(env.get("TASKSTREAM_ENV", "test")))
    app = create_app(settings, engine=engine, redis=redis_client,
                     token_verifier=TOKENS.verifier())
    return app.test_client()


@pytest.fixture
def client(engine: Engine, redis_client: redis.Redis, namespace: str,
           monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    """The subscriptions API, as in tests and development (http allowed, no private hosts)."""
    return api_client(engine, redis_client, namespace, monkeypatch)


def admin() -> dict[str, str]:
    """The Authorization header of an admin."""
    return TOKENS.headers(role="admin", username="ada")


def member() -> dict[str, str]:
    """The Authorization header of a member."""
    return TOKENS.headers(role="member", username="mia")



@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver answering 200."""
    found = Receiver().start()
    yield found
    found.stop()


@pytest.fixture
def kit(engine: Engine, redis_client: redis.Redis, namespace: str) -> Kit:
    """The stream and the database."""
    return Kit(engine, PublishingRedisBus(redis_client, f"{namespace}:events"))


@pytest.fixture
def process(monkeypatch: pytest.MonkeyPatch, webhooks_url: str, redis_url: str, namespace: str,
            engine: Engine, redis_client: redis.Redis) -> Iterator[None]:
    """The `webhooks` loops, running."""
    with running(settings(monkeypatch, webhooks_url, redis_url, namespace), engine,
                 redis_client):
        yield
