"""The `webhooks` process's loops run in this test process, on the test's database and
stream, with short retry delays; subscriptions made through the service layer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.webhooks_service.adapters.subscriptions import sql_transaction
from services.webhooks_service.config import Settings
from services.webhooks_service.entrypoints.webhooks import build_process, run_loops
from services.webhooks_service.service_layer import subscriptions as webhooks
from services.webhooks_service.service_layer.subscriptions import TargetRules
from shared.config import Env
from tests.fakes.bus import PublishingRedisBus
from tests.unit.logger_service.factories import EventFactory

# Quick retries, a quick poll, and a loopback receiver allowed.
FAST = {"WEBHOOKS_ALLOW_PRIVATE": "true", "WEBHOOKS_RETRY_BASE_SECONDS": "0.2",
        "WEBHOOKS_RETRY_MAX_DELAY_SECONDS": "1", "WEBHOOKS_POLL_SECONDS": "0.05",
        "WEBHOOKS_BLOCK_MS": "100", "WEBHOOKS_CONNECT_TIMEOUT": "2",
        "WEBHOOKS_READ_TIMEOUT": "2", "WEBHOOKS_METRICS_PORT": "0"}


@dataclass
class Kit:
    """What a delivery test drives: the stream, the subscriptions, the database."""

    engine: Engine
    bus: PublishingRedisBus
    events: EventFactory = field(default_factory=EventFactory)

    def subscribe(self, url: str, **values: Any) -> tuple[int, str]:
        """A subscription to `url`; its id and secret."""
        made = webhooks.create(sql_transaction(self.engine), TargetRules(allow_private=True),
                               {"url": url, **values})
        return made.subscription.id, made.secret

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Rows of a query."""
        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]


def settings(monkeypatch: pytest.MonkeyPatch, webhooks_url: str, redis_url: str,
             namespace: str, **env: str) -> Settings:
    """The process's settings, from the environment a test gives it."""
    for key, value in {**FAST, **env, "WEBHOOKS_DATABASE_URL": webhooks_url,
                       "REDIS_URL": redis_url, "REDIS_NAMESPACE": namespace}.items():
        monkeypatch.setenv(key, value)
    return Settings.from_env(Env("test"))


@contextmanager
def running(found: Settings, engine: Engine, client: redis.Redis) -> Iterator[threading.Event]:
    """The loops in threads until the block ends; a loop's failure fails the test."""
    process = build_process(found, engine, client)
    stop = threading.Event()
    clean: list[bool] = []
    thread = threading.Thread(target=lambda: clean.append(run_loops(process.loops(), stop)))
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(30)
    assert clean == [True]
