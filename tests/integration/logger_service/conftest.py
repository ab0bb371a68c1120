"""Fixtures of the logger's integration tests: a migrated database, the stream, a projector."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from services.logger_service.adapters.cache import DatePageCache, VersionPublisher
from services.logger_service.adapters.projection_store import sql_transaction, versions_after
from services.logger_service.config import Settings
from services.logger_service.entrypoints.app import create_app
from services.logger_service.service_layer.projection import LoggerProjection
from shared.config import Env
from shared.events import EventEnvelope
from shared.settings import CommonSettings
from shared.stream.consumer import StreamConsumer
from shared.stream.options import ConsumerOptions
from shared.stream.redis_bus import RedisStreamBus
from testbed.tokens import TokenFactory
from tests.fakes.bus import PublishingRedisBus
from tests.unit.logger_service.factories import EventFactory


@pytest.fixture
def logger_url(fresh_database: Callable[[str], str]) -> str:
    """A migrated logger database."""
    return fresh_database("logger")


@pytest.fixture
def engine(logger_url: str) -> Iterator[Engine]:
    """An engine on the logger database."""
    engine = create_engine(logger_url)
    yield engine
    engine.dispose()


@pytest.fixture
def bus(redis_client: redis.Redis, namespace: str) -> PublishingRedisBus:
    """The namespaced event stream."""
    return PublishingRedisBus(redis_client, f"{namespace}:events")


@pytest.fixture
def cache(redis_client: redis.Redis, namespace: str) -> DatePageCache:
    """The date cache in the test's namespace."""
    return DatePageCache(redis_client, namespace, ttl_seconds=60)


@pytest.fixture
def events() -> EventFactory:
    """Consecutively numbered events."""
    return EventFactory()


def sql_consumer(engine: Engine, bus: RedisStreamBus, name: str = "p1",
                 cache: DatePageCache | None = None, versions: VersionPublisher | None = None,
                 timezone: str = "UTC", **options: object) -> StreamConsumer:
    """A projector consumer (no applier lock) on a database and stream, publishing the
    versions of the dates it changes to `cache` (or through `versions`)."""
    settings = ConsumerOptions(group="logger", consumer=name, block_ms=0,
                               retry_delay_seconds=0, **options)  # type: ignore[arg-type]
    if versions is None and cache is not None:
        versions = VersionPublisher(cache, lambda after: versions_after(engine, after))
    projection = LoggerProjection(sql_transaction(engine), versions, timezone=timezone)
    bus.ensure_group("logger")
    return StreamConsumer(bus, projection, settings)


@pytest.fixture
def make_consumer(engine: Engine, bus: RedisStreamBus, cache: DatePageCache
                  ) -> Callable[..., StreamConsumer]:
    """Factory of projector consumers on the test's stream and database."""

    def make(name: str = "p1", timezone: str = "UTC", **options: object) -> StreamConsumer:
        return sql_consumer(engine, bus, name, cache, timezone=timezone, **options)

    return make


INSERT_EVENT = text("""
    INSERT INTO events (seq, event_id, task_id, version, type, data, metadata, occurred_at)
    VALUES (:seq, CAST(:event_id AS uuid), :task_id, :version, :type, CAST(:data AS jsonb),
            CAST(:metadata AS jsonb), :occurred_at)
""")


def store(tasks_engine: Engine, events: list[EventEnvelope]) -> None:
    """Append events to the task service's event store as it stores them."""
    rows = [{
        "seq": e.seq, "event_id": e.event_id, "task_id": e.task_id, "version": e.version,
        "type": e.type, "data": json.dumps(e.data), "occurred_at": e.occurred_at,
        "metadata": json.dumps({"actor": dataclasses.asdict(e.actor) if e.actor else None,
                                "correlation_id": e.correlation_id, "schema_version": 1}),
    } for e in events]
    with tasks_engine.begin() as connection:
        connection.execute(INSERT_EVENT, rows)


@pytest.fixture
def tasks_engine(fresh_database: Callable[[str], str]) -> Iterator[Engine]:
    """The task service's database (its event store)."""
    engine = create_engine(fresh_database("tasks"))
    yield engine
    engine.dispose()


TOKENS = TokenFactory()


@pytest.fixture
def client(engine: Engine, redis_client: redis.Redis, namespace: str,
           monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    """A test client of the logger app on the test's database and namespace."""
    monkeypatch.setenv("REDIS_URL", "redis://unused")
    monkeypatch.setenv("REDIS_NAMESPACE", namespace)
    settings = Settings(common=CommonSettings.from_env(Env("test")), database_url="unused")
    app = create_app(settings, engine=engine, redis=redis_client,
                     token_verifier=TOKENS.verifier())
    return app.test_client()


def member() -> dict[str, str]:
    """The Authorization header of a member."""
    return TOKENS.headers(role="member", username="mia")


def table(engine: Engine, sql: str) -> list[tuple]:
    """Rows of a query, as tuples."""
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


def drain(consumer: StreamConsumer, limit: int = 50) -> None:
    """Step the consumer until it finds nothing more to do."""
    for _ in range(limit):
        if consumer.step() == 0 and not consumer.recheck_pending:
            return
    raise AssertionError("consumer did not settle")


ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def start_projector(logger_url, redis_url, namespace, tmp_path
                    ) -> Iterator[Callable[[str], subprocess.Popen]]:
    """Start `taskstream projector` processes logging to files; all are killed afterwards."""
    started: list[subprocess.Popen] = []

    def start(name: str, **extra: str) -> subprocess.Popen:
        env = dict(os.environ, TASKSTREAM_ENV="test", LOGGER_DATABASE_URL=logger_url,
                   REDIS_URL=redis_url, REDIS_NAMESPACE=namespace, LOG_FORMAT="json",
                   PROJECTOR_CONSUMER_NAME=name, PROJECTOR_BLOCK_MS="100",
                   PROJECTOR_LOCK_POLL_SECONDS="0.2", PROJECTOR_METRICS_PORT="0",
                   PYTHONUNBUFFERED="1")
        env.update(extra)
        log = (tmp_path / f"{name}.log").open("w")
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "taskstream"), "projector"], cwd=ROOT, env=env,
            stdout=log, stderr=subprocess.STDOUT,
        )
        process.log_path = tmp_path / f"{name}.log"  # type: ignore[attr-defined]
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def messages(process: subprocess.Popen) -> list[str]:
    """The log messages a projector wrote so far."""
    found = []
    for line in process.log_path.read_text().splitlines():  # type: ignore[attr-defined]
        try:
            found.append(json.loads(line)["message"])
        except (ValueError, KeyError):
            found.append(line)
    return found


# The fixtures of the partitioned log's tests (they need the ones above).
from tests.integration.logger_service.partitioned import (  # noqa: E402, F401
    reference,
    run_relay,
    streams,
)
