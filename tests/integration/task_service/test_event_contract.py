"""PostgreSQL's fast paths of the event contract, held to the Python definitions they copy."""

from __future__ import annotations

import json
import uuid

from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from services.logger_service.service_layer.projection import CREATED_PREFIX
from services.task_service.adapters.orm import TaskRecord
from services.task_service.adapters.stored_events import read_encoded_after, read_one
from services.task_service.domain.model import created_event
from shared.events import EventEnvelope, encode, new_event_id, to_dict
from testbed.tokens import TokenFactory
from tests.integration.task_service.test_csv_import import upload
from tests.integration.task_service.test_events_and_rebuild import exercise

CSV = ('title,description,status,priority,due_date\n'
       'Full,"quoted ""d"", two\nlines",in_progress,high,2025-03-04\n'
       'Bare,,,,\n'
       'Été ☃ \\ \t tab,\u2028,cancelled,low,2024-02-29\n').encode()


def stored(engine: Engine) -> list[tuple[EventEnvelope, str]]:
    """Every stored event as Python reads it, beside the JSON the relay's SQL makes of it."""
    with engine.connect() as connection:
        encoded = read_encoded_after(connection, 0, 1000)
        return [(read_one(connection, seq=seq), payload)  # type: ignore[misc]
                for seq, payload in encoded]


def test_the_relays_sql_builds_the_envelope_encode_builds(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """Same fields in the same order, same values: only JSON whitespace may differ."""
    exercise(client, tokens)
    assert upload(client, tokens, CSV).status_code == 201
    with engine.begin() as connection:  # a whole second, which Python writes without fraction
        connection.execute(text("UPDATE events SET occurred_at = '2025-01-02T03:04:05Z' "
                                "WHERE seq = 1"))
        connection.execute(text(  # metadata as older events and other writers may leave it
            "UPDATE events SET metadata = CASE seq WHEN 2 THEN metadata - 'schema_version' "
            "ELSE '{}' END WHERE seq IN (2, 3)"))
        connection.execute(text(  # a correlation id (X-Request-ID) needing JSON escapes
            "UPDATE events SET metadata = jsonb_set(metadata, '{correlation_id}', "
            "to_jsonb(CAST(:odd AS text))) WHERE seq = 4"),
            {"odd": 'a "quoted" \\ back\tslash \u2028 é'})
    pairs = stored(engine)
    assert len(pairs) == 13
    for event, payload in pairs:
        assert list(json.loads(payload)) == list(json.loads(encode(event)))
        assert json.loads(payload) == json.loads(encode(event)) == to_dict(event)


def test_the_created_prefix_tells_task_created_in_either_encoding(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """The projector's shortcut recognises exactly the TaskCreated events, however encoded."""
    exercise(client, tokens)
    for event, payload in stored(engine):
        created = event.type == "TaskCreated"
        assert bool(CREATED_PREFIX.match(payload)) == created, payload
        assert bool(CREATED_PREFIX.match(encode(event))) == created, encode(event)


def test_imported_events_carry_what_created_event_makes_of_their_task(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """The bulk import's SQL-built TaskCreated equals the one a single create appends."""
    assert upload(client, tokens, CSV).status_code == 201
    with Session(engine) as session:
        tasks = session.scalars(select(TaskRecord).order_by(TaskRecord.id)).all()
        expected = [created_event(task) for task in tasks]
    got = [event for event, _ in stored(engine)]
    assert len(got) == 3
    assert [(e.type, e.task_id, e.version, e.data) for e in got] == [
        (e.type, e.task_id, e.version, e.data) for e in expected]


def test_a_single_create_stores_what_created_event_makes_of_its_task(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """The one-statement create's SQL-built TaskCreated equals `created_event` of the row,
    with every field given and with the defaults."""
    for body in ({"title": "Full", "description": "d \u2028 é", "status": "in_progress",
                  "priority": "high", "due_date": "2024-02-29"}, {"title": "Bare"}):
        assert client.post("/task", json=body, headers=tokens.headers(sub="9")).status_code == 201
    with Session(engine) as session:
        tasks = session.scalars(select(TaskRecord).order_by(TaskRecord.id)).all()
        expected = [created_event(task) for task in tasks]
    got = [event for event, _ in stored(engine)]
    assert [(e.type, e.task_id, e.version, e.data) for e in got] == [
        (e.type, e.task_id, e.version, e.data) for e in expected]
    assert got[0].data["created_by"] == 9 and got[1].data["due_date"] is None


# An id that sets bits in every part of the event id's 48-bit counter (see `new_event_id`).
HIGH_SEQ = (0xABC << 36) | (0b11 << 34) | 0x1DEADBEEF


def test_every_event_id_is_new_event_ids_uuid7_for_its_internal_id_and_time(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """Appends and the bulk import's SQL make the same layout; only the random bits differ."""
    with engine.begin() as connection:  # the next events get ids and seqs above HIGH_SEQ
        connection.execute(text(
            "INSERT INTO events (id, seq, event_id, type, data, metadata, occurred_at) VALUES "
            "(:seq, :seq, :id, 'DailyTransferRequested', '{\"date\": \"2025-01-01\"}', '{}', "
            "now())"), {"seq": HIGH_SEQ, "id": uuid.uuid4()})
        connection.execute(text("SELECT setval('events_id_seq', :seq)"), {"seq": HIGH_SEQ})
    exercise(client, tokens)
    assert upload(client, tokens, CSV).status_code == 201
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT id, event_id, occurred_at FROM events WHERE seq > :seq ORDER BY seq"),
            {"seq": HIGH_SEQ}).all()
    ids = [uuid.UUID(str(row.event_id)) for row in rows]
    assert len(ids) == 13
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert [i.int >> 24 for i in ids] == [
        new_event_id(row.id, row.occurred_at).int >> 24 for row in rows]
    assert ids == sorted(ids)
