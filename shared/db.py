"""Database engines: sized, pre-pinged pools and a startup that waits for a late database."""

from __future__ import annotations

import logging
import time

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from shared.config import CommonSettings, parse_database_url
from shared.logs import first_line

log = logging.getLogger("taskstream.db")


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached within the configured attempts."""


def create_db_engine(
    url: str,
    *,
    pool_size: int = 5,
    max_overflow: int = 10,
    attempts: int = 10,
    backoff: float = 0.5,
    max_backoff: float = 8.0,
) -> Engine:
    """Create an engine with a sized, pre-pinged pool and wait until the database answers."""
    engine = create_engine(
        parse_database_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
    )
    wait_for_database(engine, attempts=attempts, backoff=backoff, max_backoff=max_backoff)
    return engine


def wait_for_database(
    engine: Engine, *, attempts: int, backoff: float, max_backoff: float = 8.0
) -> None:
    """Try to connect with exponential backoff, logging each attempt, or fail clearly."""
    target = engine.url.render_as_string(hide_password=True)
    for attempt in range(1, attempts + 1):
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
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
