"""A PostgreSQL connection of its own that LISTENs for appended events (the relay's wake-up)."""

from __future__ import annotations

import contextlib
import select
from typing import Any

import psycopg2
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Engine

from services.task_service.adapters.event_store import NOTIFY_CHANNEL


class Listener:
    """A dedicated PostgreSQL connection LISTENing for appended events."""

    def __init__(self, engine: Engine, wake_fd: int) -> None:
        self.engine = create_engine(engine.url, poolclass=pool.NullPool)
        self.wake_fd = wake_fd
        self.pooled: Any = None  # keeps the connection open: dropping it would close it
        self.connection: Any = None

    def connect(self) -> None:
        """Open the connection and LISTEN."""
        self.close()
        self.pooled = self.engine.raw_connection()
        self.connection = self.pooled.driver_connection
        self.connection.autocommit = True
        with self.connection.cursor() as cursor:
            cursor.execute(f"LISTEN {NOTIFY_CHANNEL}")

    def wait(self, timeout: float) -> None:
        """Return on a notification, a wake-up byte, or after `timeout` seconds."""
        if self.connection is None:
            self.connect()
        readable, _, _ = select.select([self.connection, self.wake_fd], [], [], timeout)
        if self.connection in readable:
            self.connection.poll()
            self.connection.notifies.clear()

    def close(self) -> None:
        """Close the connection, if open."""
        if self.connection is not None:
            with contextlib.suppress(psycopg2.Error):
                self.pooled.close()
            self.pooled = self.connection = None
