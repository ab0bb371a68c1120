"""Real PostgreSQL and Redis for the tests and benchmarks: named by env, in Docker, or embedded."""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.embedded import EmbeddedPostgres, EmbeddedRedis
from shared.config import normalise_database_url

RUN_ID = uuid.uuid4().hex[:8]
log = logging.getLogger("testbed.servers")


def use_docker() -> bool:
    """True when TEST_USE_DOCKER=1 and a Docker daemon answers; else embedded servers."""
    if os.environ.get("TEST_USE_DOCKER") != "1":
        return False
    import docker

    try:
        docker.from_env(timeout=5).ping()
    except Exception as exc:  # no daemon, no socket, no permission: all mean "no Docker"
        log.warning("TEST_USE_DOCKER=1 but Docker is not reachable (%s); using embedded "
                    "servers", exc)
        return False
    return True


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a server URL: TEST_DATABASE_URL, a testcontainer, or an embedded server."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield normalise_database_url(os.environ["TEST_DATABASE_URL"], "TEST_DATABASE_URL")
    elif use_docker():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver="psycopg2") as container:
            yield container.get_connection_url()
    else:
        with tempfile.TemporaryDirectory(prefix="ts-pg-") as tmp:
            server = EmbeddedPostgres(Path(tmp) / "pg")
            try:
                yield server.start()
            finally:
                server.stop()


@contextmanager
def redis_server() -> Iterator[str]:
    """Yield a Redis URL: TEST_REDIS_URL, a testcontainer, or an embedded server."""
    if os.environ.get("TEST_REDIS_URL"):
        yield os.environ["TEST_REDIS_URL"]
    elif use_docker():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7-alpine") as container:
            host = container.get_container_host_ip()
            yield f"redis://{host}:{container.get_exposed_port(6379)}/0"
    else:
        with tempfile.TemporaryDirectory(prefix="ts-redis-") as tmp:
            server = EmbeddedRedis(Path(tmp))
            try:
                yield server.start()
            finally:
                server.stop()


def unique_name(prefix: str) -> str:
    """A name no other test or test run uses."""
    return f"{prefix}_{RUN_ID}_{uuid.uuid4().hex[:8]}"
