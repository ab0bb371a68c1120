"""Database engines (sized, pre-pinged pools, a startup that waits for a late database) and
a session-level advisory lock.

The pre-ping looks at the connection's socket before asking the server: a connection the
server has closed (a restart, `pg_terminate_backend`, a cut proxy) has something to read,
its farewell or the end of the stream, while a healthy idle connection has nothing. Only
then is `SELECT 1` sent, and a connection that fails it is replaced before the caller sees
it. This is the check Go's MySQL driver makes before reusing a pooled connection; the round
trip SQLAlchemy's `pool_pre_ping` makes every time took a fifth of a `POST /task` under load.
"""

from __future__ import annotations

import functools
import logging
import time
import zlib
from select import POLLIN, POLLPRI, poll
from typing import Any

import psycopg2
from sqlalchemy import (
    Select,
    Table,
    Update,
    bindparam,
    create_engine,
    event,
    func,
    pool,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import InvalidatePoolError, OperationalError
from sqlalchemy.sql.elements import BindParameter

from shared.config import parse_database_url
from shared.logs import first_line
from shared.settings import CommonSettings

log = logging.getLogger("taskstream.db")
_FRESH = "taskstream.fresh"  # in a pool record's info: connected, not yet checked out


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached within the configured attempts."""


def ping(connection: Connection) -> None:
    """Ask the database to answer on an open connection (raises when it cannot)."""
    connection.execute(text("SELECT 1"))


def ping_database(engine: Engine) -> None:
    """Check a connection out of the engine's pool and ping the database on it."""
    with engine.connect() as connection:
        ping(connection)


def has_news(dbapi_connection: Any) -> bool:
    """Whether an idle connection's socket has something to read: a connection the server
    closed has its farewell or EOF there, a healthy idle one has nothing (no round trip)."""
    poller = poll()
    poller.register(dbapi_connection.fileno(), POLLIN | POLLPRI)
    return bool(poller.poll(0))


def _connected(_dbapi_connection: Any, record: Any) -> None:
    record.info[_FRESH] = True


def pre_ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """On checkout of a connection used before: raise `InvalidatePoolError` (the pool then
    connects anew, and replaces the connections older than this one too) for a connection
    the server has closed; ask the server only when the socket has something to read
    (module docstring). A fresh connection is not checked, as SQLAlchemy's own pre-ping
    does not check one: if it is already gone, the statement fails as an outage."""
    if record.info.pop(_FRESH, False):
        return
    if dbapi_connection.closed:
        raise InvalidatePoolError("the connection is closed")
    if not has_news(dbapi_connection):
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        dbapi_connection.rollback()
    except psycopg2.Error as exc:
        raise InvalidatePoolError(first_line(exc)) from exc


def create_db_engine(
    url: str,
    *,
    pool_size: int = CommonSettings.db_pool_size,
    max_overflow: int = CommonSettings.db_max_overflow,
    attempts: int = CommonSettings.db_connect_attempts,
    backoff: float = CommonSettings.db_connect_backoff,
    max_backoff: float = 8.0,
) -> Engine:
    """Create an engine with a sized, pre-pinged pool and wait until the database answers
    (the pool and the wait as `CommonSettings` has them unless told otherwise)."""
    engine = create_engine(
        parse_database_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
    )
    event.listen(engine, "connect", _connected)
    event.listen(engine, "checkout", pre_ping)
    wait_for_database(engine, attempts=attempts, backoff=backoff, max_backoff=max_backoff)
    return engine


def wait_for_database(
    engine: Engine, *, attempts: int, backoff: float, max_backoff: float = 8.0
) -> None:
    """Try to connect with exponential backoff, logging each attempt, or fail clearly."""
    target = engine.url.render_as_string(hide_password=True)
    for attempt in range(1, attempts + 1):
        try:
            ping_database(engine)
        except OperationalError as exc:
            reason = first_line(exc.orig or exc)
            if attempt == attempts:
                raise DatabaseUnavailable(
                    f"Could not connect to {target} after {attempts} attempts: {reason}"
                ) from exc
            delay = min(max_backoff, backoff * 2 ** (attempt - 1))
            log.warning(
                "DB connection attempt %d/%d to %s failed (%s); retrying in %.1fs",
                attempt, attempts, target, reason, delay,
            )
            time.sleep(delay)
        else:  # worth a line only after a wait; a first-try success is the normal case
            log.log(logging.INFO if attempt > 1 else logging.DEBUG,
                    "DB connection established successfully.")
            return


def ensure_database(url: str) -> bool:
    """Create the database named by `url` if it does not exist; return True if created."""
    target = parse_database_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": target.database},
            ).scalar()
            if exists:
                return False
            connection.execute(text(f'CREATE DATABASE "{target.database}"'))
            return True
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    """Drop the database named by `url`, disconnecting its sessions first."""
    target = parse_database_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def engine_for(url: str, common: CommonSettings) -> Engine:
    """A service's engine, sized and retried as its common settings say."""
    return create_db_engine(
        url, pool_size=common.db_pool_size, max_overflow=common.db_max_overflow,
        attempts=common.db_connect_attempts, backoff=common.db_connect_backoff,
    )


class PostgresAdvisoryLock:
    """A session-level PostgreSQL advisory lock on a connection of its own.

    PostgreSQL releases it when that session ends, so a killed holder frees it at once. It is
    the `shared.stream.applier_lock.ApplierLock` of consumers that run on several processes.
    """

    def __init__(self, url: str, name: str) -> None:
        self.engine = create_engine(url, poolclass=pool.NullPool)
        self.key = zlib.crc32(name.encode())
        self.connection: Connection | None = None

    def acquire(self) -> bool:
        """Try `pg_try_advisory_lock` on the lock's own session."""
        if self.connection is None:
            self.connection = self.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            )
        try:
            got = self.connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
            ).scalar()
        except Exception:
            self._drop()
            raise
        return bool(got)

    def held(self) -> bool:
        """Check that the session holding the lock is still alive: asked of the server only
        when its socket has something to read (`has_news`), since a consumer checks before
        every pass and an idle session has nothing to say unless it was ended."""
        if self.connection is None:
            return False
        try:
            raw = self.connection.connection.dbapi_connection
            if raw is not None and not raw.closed and not has_news(raw):
                return True
            ping(self.connection)
        except Exception:  # the session, and with it the lock, is gone
            self._drop()
            return False
        return True

    def release(self) -> None:
        """End the session, which releases the lock."""
        self._drop()

    def _drop(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception as exc:  # closing a dead connection may fail; it is gone anyway
                log.debug("closing lock connection: %s", exc)
            self.connection = None


@functools.cache
def _checkpoint_statements(checkpoints: Table) -> tuple[Select[Any], Update]:
    """The statements every consumer pass runs on its checkpoint row, built once per table
    (building them per pass cost more CPU than executing them)."""
    name: BindParameter[str] = bindparam("checkpoint_name")
    lock = select(checkpoints.c.last_seq).where(checkpoints.c.name == name).with_for_update()
    advance = (update(checkpoints).where(checkpoints.c.name == name)
               .values(last_seq=bindparam("checkpoint_seq"), updated_at=func.now()))
    return lock, advance


def lock_checkpoint(connection: Connection, checkpoints: Table, name: str) -> int:
    """A consumer's checkpoint (`last_seq` of the row `name` of a checkpoints table), the row
    locked until the transaction ends; made at 0 the first time. One statement on every
    pass but the first (it used to try the insert on every pass, a round trip of its own)."""
    lock, _ = _checkpoint_statements(checkpoints)
    found = connection.execute(lock, {"checkpoint_name": name}).scalar()
    if found is None:
        connection.execute(
            pg_insert(checkpoints).values(name=name, last_seq=0).on_conflict_do_nothing())
        found = connection.execute(lock, {"checkpoint_name": name}).scalar_one()
    return int(found)


def advance_checkpoint(connection: Connection, checkpoints: Table, name: str, seq: int) -> None:
    """Move a consumer's checkpoint to `seq`; it commits with the effects of the pass."""
    _, advance = _checkpoint_statements(checkpoints)
    connection.execute(advance, {"checkpoint_name": name, "checkpoint_seq": seq})
