"""`taskstream projections status`, and a crash between commit and XACK on real servers."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine

from services.entrypoints.cli import main
from shared.stream.redis_bus import RedisStreamBus
from tests.fakes.bus import PublishingRedisBus
from tests.integration.logger_service.conftest import drain, sql_consumer
from tests.integration.logger_service.test_projections import snapshot
from tests.unit.logger_service.factories import EventFactory


def test_status_reports_checkpoint_head_lag_pending_and_dead_letters(
        bus, events, make_consumer, logger_url, redis_url, namespace, monkeypatch):
    bus.publish([events.created(1), events.created(2)])
    drain(make_consumer())
    bus.publish([events.created(3), events.created(4), events.created(5)])
    bus.read_new("logger", "p1", 1, 0)  # one delivered, not applied yet
    monkeypatch.setenv("LOGGER_DATABASE_URL", logger_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("REDIS_NAMESPACE", namespace)
    result = CliRunner().invoke(main, ["projections", "status", "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output.strip().splitlines()[-1])
    assert (status["checkpoint"], status["stream_head"], status["lag_events"]) == (2, 5, 3)
    assert (status["pending"], status["consumers"], status["dead_letters"]) == (1, 1, 0)
    assert status["lag_seconds"] > 0
    text = CliRunner().invoke(main, ["projections", "status"]).output
    assert "lag:          3 events" in text


class DiesBeforeAck(RedisStreamBus):
    """The stream as seen by a projector killed right after its commit."""

    def ack(self, group, entry_ids):
        raise SystemExit("killed after commit, before XACK")


def test_a_crash_after_commit_before_xack_changes_nothing(
        bus, engine, fresh_database, redis_client):
    factory = EventFactory()
    published = [factory.created(1), factory.created(2), factory.transfer(),
                 factory.status(1, "active", "completed"), factory.purged(2)]
    bus.publish(published)
    doomed = sql_consumer(engine, DiesBeforeAck(redis_client, bus.stream))
    with pytest.raises(SystemExit):
        doomed.step()
    assert bus.group_info("logger").pending == 5
    drain(sql_consumer(engine, bus))  # the restarted projector, same name
    assert bus.group_info("logger").pending == 0

    clean_engine = create_engine(fresh_database("logger"))
    clean_bus = PublishingRedisBus(redis_client, f"{bus.stream}-clean")
    clean_bus.publish(published)
    drain(sql_consumer(clean_engine, clean_bus))
    assert snapshot(engine) == snapshot(clean_engine)
    clean_engine.dispose()
