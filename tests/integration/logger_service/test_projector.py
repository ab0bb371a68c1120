"""The projector against real PostgreSQL and Redis: events applied once, in order."""

from __future__ import annotations

from tests.integration.logger_service.conftest import drain, table
from tests.unit.logger_service.factories import DAY


def test_created_and_transferred_tasks_reach_the_task_logger(bus, engine, events, make_consumer):
    bus.publish([events.created(1), events.created(2, status="completed"),
                 events.created(3, status="in_progress"), events.transfer()])
    drain(make_consumer())
    rows = table(engine, "SELECT task_id, status, date FROM task_logger ORDER BY task_id")
    assert rows == [(1, "active", DAY), (3, "in_progress", DAY)]
    assert table(engine, "SELECT last_seq FROM projection_checkpoints") == [(4,)]
