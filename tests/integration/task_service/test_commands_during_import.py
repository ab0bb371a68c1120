"""Commands while an import holds the numbering of the log: they answer at once, without
`X-Event-Seq`, and their events are numbered after the import, whether it commits or not."""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import Engine
from werkzeug.test import TestResponse

from services.task_service.adapters.event_store import (
    APPEND_LOCK_KEY,
    BULK_LOCK_KEY,
    STEP,
    numbering_parameters,
)
from services.task_service.adapters.sequencer import Sequencer
from services.task_service.adapters.stored_events import HOLDS, StoredEvents
from services.task_service.domain.model import Context
from services.task_service.service_layer.csv_import import COLUMNS, CsvBatches
from services.task_service.service_layer.unit_of_work import UnitOfWork
from shared.events import Actor
from testbed.tokens import TokenFactory

CONTEXT = Context(Actor(7, "importer", "admin"), "the-import")
ROWS = 300
ANSWERED_WITHIN = 10.0  # seconds; the import stays open until every command has answered


class Rollback(Exception):
    """Ends the held import without committing it."""


@contextmanager
def import_in_progress(engine: Engine, commit: bool) -> Iterator[None]:
    """An import that has inserted its events under the sequencing lock and not yet ended."""
    rows = "".join(f"imported {n}\n" for n in range(ROWS)).encode()
    with UnitOfWork(engine) as uow, CsvBatches(io.BytesIO(b"title\n" + rows)) as batches:
        uow.imports.insert_created(batches, COLUMNS, CONTEXT, datetime.now(UTC))
        yield
        if commit:
            uow.commit()


def stored(engine: Engine) -> list[tuple[int, str]]:
    """(seq, correlation id) of every event, in seq order, once everything is numbered."""
    Sequencer(engine).number_all()
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(  # type: ignore[misc]
            "SELECT seq, metadata->>'correlation_id' FROM events ORDER BY seq"))]


def commands_while(pool: ThreadPoolExecutor, app: Flask, tokens: TokenFactory, task_id: int
                   ) -> list[TestResponse]:
    """A create, a keyed create, an update with If-Match and a second create, sent together;
    their answers, which must all come while the import is still open."""
    headers = tokens.headers(role="admin")

    def send(method: str, path: str, name: str, extra: dict[str, str], body: object
             ) -> TestResponse:
        return app.test_client().open(path, method=method, json=body, headers={
            **headers, "X-Request-ID": name, **extra})

    sent = [pool.submit(send, "POST", "/task", "plain", {}, {"title": "plain"}),
            pool.submit(send, "POST", "/task", "keyed", {"Idempotency-Key": "during"},
                        {"title": "keyed"}),
            pool.submit(send, "PUT", f"/task/{task_id}", "update", {"If-Match": '"1"'},
                        {"title": "new"}),
            pool.submit(send, "POST", "/task", "other", {}, {"title": "other"})]
    _, waiting = wait(sent, timeout=ANSWERED_WITHIN)
    assert not waiting, "a command waited for the import"
    return [answer.result() for answer in sent]


@pytest.mark.parametrize("commit", [True, False])
def test_commands_answer_at_once_while_an_import_numbers_its_events(
        make_app, tokens: TokenFactory, engine: Engine, commit: bool) -> None:
    """Every command answers 2xx without `X-Event-Seq` while the import is open; afterwards
    the log is exactly 1..N, the import's events (if it committed) right after what preceded
    it, the commands' after them, and a retry with the key answers the position it has now."""
    app = make_app()
    first = app.test_client().post("/task", json={"title": "before"}, headers={
        **tokens.headers(role="admin"), "X-Request-ID": "before"})
    assert first.headers["X-Event-Seq"] == "1"
    pool = ThreadPoolExecutor(4)
    try:
        with import_in_progress(engine, commit):
            answers = commands_while(pool, app, tokens, first.get_json()["id"])
    finally:
        pool.shutdown()  # after the import ended: a command that waited for it can finish
    assert [answer.status_code for answer in answers] == [201, 201, 200, 201]
    assert all("X-Event-Seq" not in answer.headers for answer in answers)
    log = stored(engine)
    assert [seq for seq, _ in log] == list(range(1, len(log) + 1))  # no hole, none twice
    imported = ROWS if commit else 0
    assert [name for _, name in log[:1 + imported]] == ["before"] + ["the-import"] * imported
    assert sorted(name for _, name in log[1 + imported:]) == ["keyed", "other", "plain",
                                                              "update"]
    again = app.test_client().post("/task", json={"title": "keyed"}, headers={
        **tokens.headers(role="admin"), "Idempotency-Key": "during"})
    assert again.status_code == 201
    assert again.get_json() == answers[1].get_json()
    assert int(again.headers["X-Event-Seq"]) == dict((n, s) for s, n in log)["keyed"]


def test_a_create_that_cannot_number_finds_its_event_through_the_index(engine: Engine) -> None:
    """`POST /task` looks its event up after a failed try of the lock (as during an import,
    when the log holds a million rows): through the primary key, never by reading it all,
    whether the step waits for the one running or not, under either kind of cached plan."""
    holder = engine.raw_connection()
    try:
        with holder.driver_connection.cursor() as cursor:  # an import numbering its events
            cursor.execute("SELECT pg_advisory_lock(%s), pg_advisory_lock(%s)",
                           (BULK_LOCK_KEY, APPEND_LOCK_KEY))
        for mode in ("force_custom_plan", "force_generic_plan"):
            for wait_for_step in (False, True):
                with engine.connect() as connection:
                    connection.execute(text("SET LOCAL enable_seqscan = off"))
                    connection.execute(text(f"SET LOCAL plan_cache_mode = {mode}"))
                    found = connection.exec_driver_sql(STEP.body, numbering_parameters(
                        mine=12345, wait_for_step=wait_for_step)).one()
                    assert tuple(found) == (0, None, 0, 0, False, wait_for_step), found
                    scans = connection.execute(text(
                        "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables "
                        "WHERE relname = 'events'")).one()
                    assert scans == (0, 1), (mode, wait_for_step, scans)
                    connection.invalidate()  # the next session plans the function anew
    finally:
        holder.close()


def test_a_min_seq_read_asks_the_log_for_its_position_not_for_its_head(engine: Engine) -> None:
    """Whether the log holds a position is right before, at and past the head, and for the
    seqs an open import has given but not committed; and it is one index lookup, where the
    head walks down the seq index past every such entry."""
    log = StoredEvents(engine)
    with UnitOfWork(engine) as uow, CsvBatches(io.BytesIO(b"title\nfirst\nsecond\n")) as rows:
        uow.imports.insert_created(rows, COLUMNS, CONTEXT, datetime.now(UTC))
        uow.commit()
    head = log.head()
    assert head == 2 and [log.holds(n) for n in (1, 2, 3)] == [True, True, False]
    with import_in_progress(engine, commit=False):  # ROWS seqs past the head, not committed
        assert [log.holds(n) for n in (head, head + 1, head + ROWS)] == [True, False, False]
    with engine.connect() as connection:
        plan = "\n".join(connection.execute(text("EXPLAIN " + str(HOLDS)), {"seq": 3}
                                            ).scalars())
    assert "Index Only Scan using" in plan and "seq = " in plan, plan
