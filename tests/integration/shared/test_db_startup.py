"""A service's first connection waits for a late database, then fails clearly."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import BigInteger, Column, MetaData, String, Table, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError

from services.embedded import free_port
from shared.db import (
    DatabaseUnavailable,
    PostgresAdvisoryLock,
    create_db_engine,
    lock_checkpoint,
    pre_ping,
)
from testbed.polling import wait_for
from tests.proxy import CuttableProxy


def _maintenance_db(pg_url: str) -> str:
    """The server's `postgres` database, which every server has."""
    return make_url(pg_url).set(database="postgres").render_as_string(hide_password=False)


def _via_proxy(pg_url: str, proxy: CuttableProxy) -> str:
    url = make_url(_maintenance_db(pg_url))
    target = url.query.get("host") or url.host
    proxy.target = target if str(target).startswith("/") else (url.host, url.port or 5432)
    if str(target).startswith("/"):
        proxy.target = f"{target}/.s.PGSQL.{url.port or 5432}"
    return url.set(host="127.0.0.1", port=proxy.port, query={}).render_as_string(
        hide_password=False)


def test_waits_for_a_late_database_and_logs_each_attempt(
        pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    proxy = CuttableProxy(("127.0.0.1", 1))
    url = _via_proxy(pg_url, proxy)
    proxy.cut()  # the database is "down" when the service starts
    caplog.set_level(logging.INFO, logger="taskstream.db")
    attempts: list[str] = []

    class ComeBackAfterTwoFailures(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            attempts.append(record.getMessage())
            if len(attempts) == 2:
                threading.Thread(target=proxy.restore).start()

    handler = ComeBackAfterTwoFailures(level=logging.WARNING)
    logging.getLogger("taskstream.db").addHandler(handler)
    try:
        engine = create_db_engine(url, attempts=10, backoff=0.05)
    finally:
        logging.getLogger("taskstream.db").removeHandler(handler)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()
    proxy.close()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("DB connection attempt" in m for m in messages) >= 2
    assert messages[-1] == "DB connection established successfully."


def test_gives_up_with_a_clear_error_after_the_last_attempt() -> None:
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(DatabaseUnavailable, match=r"after 3 attempts"):
        create_db_engine(url, attempts=3, backoff=0.01)


class CountedCursors:
    """A real psycopg2 connection that counts the cursors opened on it (the queries sent)."""

    def __init__(self, real: Any) -> None:
        self.real, self.cursors = real, 0

    @property
    def closed(self) -> int:
        return int(self.real.closed)

    def fileno(self) -> int:
        return int(self.real.fileno())

    def cursor(self) -> Any:
        self.cursors += 1
        return self.real.cursor()

    def rollback(self) -> None:
        self.real.rollback()


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def terminate(engine: Engine, pid: int) -> None:
    """End backend `pid` from another session and wait until it is gone."""
    with engine.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        gone = text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid")
        wait_for(lambda: other.execute(gone, {"pid": pid}).scalar_one(), timeout=10)


def test_pool_is_sized_and_replaces_a_connection_the_server_closed(pg_url: str) -> None:
    engine = create_db_engine(_maintenance_db(pg_url), pool_size=3, max_overflow=1, attempts=1)
    other = create_db_engine(_maintenance_db(pg_url), attempts=1)
    try:
        assert engine.pool.size() == 3
        first = backend_pid(engine)
        assert backend_pid(engine) == first  # the pool hands its one connection out again
        terminate(other, first)
        assert backend_pid(engine) != first  # replaced at checkout, unseen by the caller
    finally:
        engine.dispose()
        other.dispose()


def test_the_pre_ping_asks_the_server_only_when_the_socket_has_something_to_read(
        pg_url: str) -> None:
    engine = create_db_engine(_maintenance_db(pg_url), attempts=1)
    other = create_db_engine(_maintenance_db(pg_url), attempts=1)
    try:
        raw = engine.raw_connection()  # checked out once: no longer fresh
        connection = CountedCursors(raw.driver_connection)
        pre_ping(connection, raw, None)
        assert connection.cursors == 0  # healthy and idle: nothing sent
        with raw.driver_connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        raw.driver_connection.rollback()
        terminate(other, pid)
        with pytest.raises(DisconnectionError):
            pre_ping(connection, raw, None)
        assert connection.cursors == 1  # the farewell was there to read: asked, and failed
        raw.invalidate()
    finally:
        engine.dispose()
        other.dispose()


def test_a_database_outage_during_a_request_is_a_503(pg_url: str) -> None:
    from flask import Flask

    from shared.http import init_http

    proxy = CuttableProxy(("127.0.0.1", 1))
    engine = create_db_engine(_via_proxy(pg_url, proxy), attempts=1)
    app = Flask("services.example.app")
    init_http(app)

    @app.get("/count")
    def count() -> dict:
        with engine.connect() as connection:
            return {"n": connection.execute(text("SELECT 1")).scalar()}

    client = app.test_client()
    assert client.get("/count").status_code == 200
    proxy.cut()
    response = client.get("/count")
    assert response.status_code == 503
    assert response.get_json() == {"error": "Service temporarily unavailable, please retry"}
    assert response.headers["Retry-After"] == "1"
    engine.dispose()
    proxy.close()


def statements_sent(engine: Engine) -> list[str]:
    """The statements an engine sends from now on, as SQLAlchemy passes them to the driver."""
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _conn, _cursor, statement, *_rest: sent.append(statement))
    return sent


def test_the_applier_lock_asks_the_server_only_when_its_socket_has_something_to_read(
        pg_url: str) -> None:
    """A consumer checks its lock before every pass: a live idle session costs no round
    trip; one the server ended is found at the next check, asked and dropped."""
    lock = PostgresAdvisoryLock(_maintenance_db(pg_url), f"probe-{uuid.uuid4().hex}")
    other = create_db_engine(_maintenance_db(pg_url), attempts=1)
    try:
        assert lock.acquire() and lock.connection is not None
        pid = lock.connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        sent = statements_sent(lock.engine)
        assert all(lock.held() for _ in range(100)) and sent == []
        terminate(other, pid)
        wait_for(lambda: not lock.held(), timeout=10, what="the ended session to be noticed")
        assert sent == ["SELECT 1"] and lock.connection is None
    finally:
        lock.release()
        other.dispose()


def test_a_checkpoint_is_made_once_then_locked_by_one_statement(pg_url: str) -> None:
    """The first lock makes the row at 0; later ones only select it FOR UPDATE (another
    session cannot lock it meanwhile)."""
    engine = create_db_engine(_maintenance_db(pg_url), attempts=1)
    table = Table(f"checkpoints_{uuid.uuid4().hex[:8]}", MetaData(),
                  Column("name", String, primary_key=True),
                  Column("last_seq", BigInteger, nullable=False))
    table.create(engine)
    try:
        sent = statements_sent(engine)
        with engine.begin() as connection:
            assert lock_checkpoint(connection, table, "projector") == 0
        made = len(sent)
        with engine.begin() as connection:
            connection.execute(table.update().values(last_seq=41))
        sent.clear()
        with engine.begin() as connection:
            assert lock_checkpoint(connection, table, "projector") == 41
            assert len(sent) == 1 and "FOR UPDATE" in sent[0] and made == 3
            with engine.connect() as rival, pytest.raises(OperationalError):
                rival.execute(text(f"SELECT 1 FROM {table.name} FOR UPDATE NOWAIT"))
    finally:
        table.drop(engine)
        engine.dispose()
