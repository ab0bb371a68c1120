"""`min_seq`: a read waits for the projector to apply a position, then answers with it."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine

from services.logger_service.config import Settings
from services.logger_service.entrypoints.app import create_app
from shared.config import Env
from shared.settings import CommonSettings
from shared.stream.redis_bus import RedisStreamBus
from testbed.polling import wait_for
from tests.integration.logger_service.conftest import TOKENS, drain, member
from tests.integration.logger_service.test_outages import (
    applier,
    blocked_applier,
    checkpoint,
    projector_engine,
    running,
    task_row_locked,
)
from tests.unit.logger_service.factories import DAY, EventFactory

__all__ = ["projector_engine"]  # the fixture, used here as in the outage tests


def waiting_reads() -> float:
    """Reads of this process waiting for a position right now."""
    return REGISTRY.get_sample_value("taskstream_reads_waiting") or 0.0


@pytest.fixture
def read_client(engine: Engine, redis_client: redis.Redis, namespace: str,
                monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Test clients of the logger app whose reads wait up to `seconds` for a position."""
    monkeypatch.setenv("REDIS_URL", "redis://unused")
    monkeypatch.setenv("REDIS_NAMESPACE", namespace)
    common = CommonSettings.from_env(Env("test"))

    def make(seconds: float) -> FlaskClient:
        settings = Settings(common=dataclasses.replace(common, read_wait_seconds=seconds),
                            database_url="unused")
        return create_app(settings, engine=engine, redis=redis_client,
                          token_verifier=TOKENS.verifier()).test_client()

    return make


def test_a_read_waits_for_a_slowed_projector_then_answers_with_the_write(
        read_client, bus: RedisStreamBus, engine: Engine, events: EventFactory,
        projector_engine) -> None:
    client = read_client(seconds=30)
    bus.publish([events.created(1)])
    pool = ThreadPoolExecutor(1)
    with running(applier(bus, projector_engine())):
        wait_for(lambda: checkpoint(engine) == 1)
        with task_row_locked(engine, 1):  # the projector's next batch waits on it
            change = events.status(1, "active", "completed")
            bus.publish([change])
            wait_for(lambda: blocked_applier(engine), what="the projector to wait on the lock")
            read = pool.submit(client.get, f"/tasks/current/1?min_seq={change.seq}",
                               headers=member())
            wait_for(lambda: waiting_reads() == 1, what="the read to wait for the position")
            stale = client.get("/tasks/current/1", headers=member())  # without min_seq
            assert stale.get_json()["status"] == "active" and not read.done()
        response = read.result(timeout=30)
    assert response.status_code == 200
    assert response.get_json()["status"] == "completed"
    assert response.headers["ETag"] == '"2"'
    assert waiting_reads() == 0


READS = ["/tasks", f"/tasks?date={DAY.isoformat()}", "/task/1", "/audit", "/tasks/current",
         "/tasks/current/1"]


@pytest.mark.parametrize("path", READS)
def test_every_read_refuses_with_503_when_the_position_is_not_applied_in_time(
        read_client, bus: RedisStreamBus, events: EventFactory, make_consumer, path: str
        ) -> None:
    client = read_client(seconds=0.1)
    bus.publish([events.created(1), events.transfer()])
    drain(make_consumer())
    joiner = "&" if "?" in path else "?"
    admin = TOKENS.headers(role="admin")
    caught_up = client.get(f"{path}{joiner}min_seq=2", headers=admin)
    assert caught_up.status_code == 200, caught_up.get_json()
    ahead = client.get(f"{path}{joiner}min_seq=3", headers=admin)
    assert ahead.status_code == 503
    assert ahead.get_json() == {
        "error": "Not caught up with position 3 of the event log yet (at 2), please retry"}
    assert ahead.headers["Retry-After"] == "1"
    bad = client.get(f"{path}{joiner}min_seq=-1", headers=admin)
    assert bad.status_code == 400
    assert bad.get_json()["error"] == (
        "Invalid min_seq, expected a position of the event log (an integer from 0)")
