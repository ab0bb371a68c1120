"""Fixtures shared by every tier: real servers, fresh databases, private Redis namespaces."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
import redis
from sqlalchemy.engine import make_url

from services.registry import migrate_service
from shared.db import drop_database, ensure_database
from testbed.servers import postgres_server, redis_server, unique_name

# Tests run as the `test` environment unless a test says otherwise.
os.environ.setdefault("TASKSTREAM_ENV", "test")


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """Undo what a test (or an `.env` file it loaded) put in the process environment."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a real PostgreSQL server for this test session."""
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a real Redis server for this test session."""
    with redis_server() as url:
        yield url


@pytest.fixture
def fresh_database(pg_url: str) -> Iterator[Callable[[str], str]]:
    """Factory: create an empty, migrated database for a service; dropped after the test."""
    created: list[str] = []

    def make(service: str) -> str:
        url = make_url(pg_url).set(database=unique_name(f"ts_{service}"))
        rendered = url.render_as_string(hide_password=False)
        ensure_database(rendered)
        created.append(rendered)
        migrate_service(service, rendered)
        return rendered

    yield make
    for url in created:
        drop_database(url)


@pytest.fixture
def namespace() -> str:
    """A Redis key namespace private to one test."""
    return unique_name("ts-test")


@pytest.fixture
def redis_client(redis_url: str, namespace: str) -> Iterator[redis.Redis]:
    """A Redis client; the test's namespace is deleted afterwards."""
    client = redis.Redis.from_url(redis_url)
    yield client
    keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
