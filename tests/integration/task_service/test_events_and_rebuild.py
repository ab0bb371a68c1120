"""Real events match docs/events/*.schema.json, and the state table can be rebuilt from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.task_service.adapters.stored_events import read_encoded_after
from services.task_service.config import Settings
from shared.events import EVENT_TYPES, to_dict
from testbed.tokens import TokenFactory
from tests.integration.task_service.helpers import read_after

SCHEMAS = Path(__file__).resolve().parents[3] / "docs" / "events"


def validators() -> dict[str, Draft202012Validator]:
    """One validator per event type, resolving the shared envelope schema."""
    documents = {p.name: json.loads(p.read_text()) for p in SCHEMAS.glob("*.schema.json")}
    registry = Registry().with_resources(
        (name, Resource.from_contents(doc)) for name, doc in documents.items())
    return {kind: Draft202012Validator(documents[f"{kind}.schema.json"], registry=registry,
                                       format_checker=FormatChecker())
            for kind in EVENT_TYPES}


def exercise(client: FlaskClient, tokens: TokenFactory) -> None:
    """Produce every kind of event through the API."""
    admin = tokens.headers()
    first = client.post("/task", json={"title": "a", "due_date": "2025-01-01"},
                        headers=admin).get_json()
    second = client.post("/task", json={"title": "b", "description": "d"},
                         headers=admin).get_json()
    client.put(f"/task/{first['id']}", json={"title": "a2", "due_date": None,
                                            "status": "in_progress"}, headers=admin)
    client.put(f"/task/{second['id']}", json={"priority": "high"}, headers=admin)
    client.delete(f"/task/{second['id']}", headers=admin)
    third = client.post("/task", json={"title": "c"}, headers=admin).get_json()
    client.delete(f"/task/{third['id']}?purge=true", headers=admin)
    client.post("/upload-csv", data=b"title,status\nx,completed\n", headers={
        **admin, "Content-Type": "text/csv"})
    client.post("/admin/transfer", json={"date": "2025-02-02"}, headers=admin)


def test_every_event_type_matches_its_documented_schema(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """Each stored event, as the relay publishes it, validates against its schema."""
    exercise(client, tokens)
    with engine.connect() as connection:
        events = read_after(connection, 0, 1000)
    checks = validators()
    assert {e.type for e in events} == set(EVENT_TYPES)
    for event in events:
        checks[event.type].validate(to_dict(event))


def test_the_relays_payloads_are_the_envelopes_of_the_contract(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """What the relay publishes (encoded by PostgreSQL) is exactly `shared.events.encode`'s."""
    exercise(client, tokens)
    with engine.begin() as connection:  # a whole second, which Python writes without fraction
        connection.execute(text("UPDATE events SET occurred_at = '2025-01-02T03:04:05Z' "
                                "WHERE seq = 1"))
    with engine.connect() as connection:
        events = read_after(connection, 0, 1000)
        encoded = read_encoded_after(connection, 0, 1000)
    assert [seq for seq, _ in encoded] == [event.seq for event in events]
    assert [json.loads(payload) for _, payload in encoded] == [to_dict(e) for e in events]
    assert json.loads(encoded[0][1])["occurred_at"] == "2025-01-02T03:04:05Z"


def test_a_wrong_event_is_rejected_by_the_schemas() -> None:
    """The schemas are strict enough to catch a malformed event."""
    event = {"event_id": "5a1f2b9e-2a9f-4e55-9d5b-7d8d2f0c1a11", "seq": 1,
             "type": "TaskStatusChanged", "task_id": 1, "version": 2,
             "occurred_at": "2025-01-01T00:00:00Z", "schema_version": 1, "actor": None,
             "correlation_id": None, "data": {"previous_status": "active", "new_status": "done"}}
    with pytest.raises(Exception, match="done"):
        validators()["TaskStatusChanged"].validate(event)


def snapshot(engine: Engine) -> list[tuple]:
    """Every row of task_manager, every column."""
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(
            "SELECT * FROM task_manager ORDER BY id")).all()]


def test_rebuild_state_from_events_equals_the_live_table(
        client: FlaskClient, tokens: TokenFactory, engine: Engine, settings: Settings,
        monkeypatch) -> None:
    """`taskstream tasks rebuild-state` reproduces task_manager exactly, ids continue after."""
    from services.entrypoints.cli import main

    exercise(client, tokens)
    live = snapshot(engine)
    assert len(live) == 3
    with engine.begin() as connection:  # damage the state; the events are the truth
        connection.execute(text("UPDATE task_manager SET title = 'wrong', version = 99"))
        connection.execute(text("DELETE FROM task_manager WHERE id = (SELECT min(id) "
                                "FROM task_manager)"))
    monkeypatch.setenv("TASKS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.common.redis_url)
    result = CliRunner().invoke(main, ["tasks", "rebuild-state"])
    assert result.exit_code == 0, result.output
    assert "3 tasks" in result.output
    assert snapshot(engine) == live
    created = client.post("/task", json={"title": "next"}, headers=tokens.headers()).get_json()
    assert created["id"] > max(row[0] for row in live) and created["id"] != 3
