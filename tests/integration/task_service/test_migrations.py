"""Revision 0004 keeps every stored event's seq and continues after them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from services.registry import migrations_dir
from services.task_service.domain.model import Context, CreateTask
from services.task_service.service_layer.tasks import create_task
from services.task_service.service_layer.unit_of_work import UnitOfWork
from shared.db import drop_database, ensure_database
from shared.events import Actor
from shared.migrations import upgrade


@pytest.fixture
def old_store(tasks_url: str) -> Iterator[Engine]:
    """A task database at revision 0003 holding three events (seqs 1..3)."""
    url = tasks_url.rsplit("/", 1)[0] + f"/ts_tasks_old_{uuid.uuid4().hex[:8]}"
    ensure_database(url)
    upgrade(migrations_dir("tasks"), url, "0003")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO events (seq, event_id, task_id, version, type, data, metadata, "
            "occurred_at) SELECT n, gen_random_uuid(), n, 1, 'TaskCreated', '{}', '{}', now() "
            "FROM generate_series(1, 3) AS n"))
        connection.execute(text(
            "INSERT INTO task_manager (id, title, created_by, created_at, updated_at) "
            "OVERRIDING SYSTEM VALUE SELECT n, 't', 1, now(), now() FROM generate_series(1, 3) n"))
        connection.execute(text(
            "SELECT setval(pg_get_serial_sequence('task_manager', 'id'), 3)"))
    yield engine
    engine.dispose()
    drop_database(url)


def test_upgrading_keeps_the_seqs_and_numbers_new_events_after_them(old_store: Engine) -> None:
    upgrade(migrations_dir("tasks"), old_store.url.render_as_string(hide_password=False))
    done = create_task(UnitOfWork(old_store), CreateTask("after"), Context(Actor(1, "a", "admin")))
    with old_store.connect() as connection:
        rows = connection.execute(text("SELECT id, seq FROM events ORDER BY seq")).all()
    assert [tuple(row) for row in rows] == [(1, 1), (2, 2), (3, 3), (4, 4)]
    assert done.position == 4
