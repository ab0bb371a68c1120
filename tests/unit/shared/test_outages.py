"""Every way a lost database or Redis connection surfaces is a 503 with Retry-After."""

from __future__ import annotations

import psycopg2
import pytest
import redis
from flask import Flask
from redis.exceptions import (
    ClusterDownError,
    MasterDownError,
    ReadOnlyError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from shared.errors import register_error_handlers
from shared.outages import is_outage, is_transient


class PgError(Exception):
    def __init__(self, pgcode: str | None) -> None:
        super().__init__(pgcode)
        self.pgcode = pgcode


def raised_during(first: Exception, second: Exception) -> Exception:
    """`second` as raised while `first` was being handled (a `finally` that failed)."""
    try:
        try:
            raise first
        finally:
            raise second
    except Exception as exc:
        return exc


LOST = [
    OperationalError("SELECT 1", {}, psycopg2.OperationalError("server closed the connection")),
    InterfaceError("SELECT 1", {}, psycopg2.InterfaceError("connection already closed")),
    DBAPIError("SELECT 1", {}, PgError("XX000"), connection_invalidated=True),
    DBAPIError("SELECT 1", {}, PgError("57P01")),  # terminating connection (administrator)
    DBAPIError("SELECT 1", {}, PgError("08006")),
    DBAPIError("INSERT", {}, PgError("25006")),  # a standby after a failover
    PoolTimeout("QueuePool limit of size 5 overflow 10 reached, connection timed out"),
    psycopg2.OperationalError("server closed the connection unexpectedly"),
    psycopg2.InterfaceError("connection already closed"),
    raised_during(psycopg2.OperationalError("closed"), psycopg2.InterfaceError("closed")),
    redis.ConnectionError("Connection refused"),
    redis.TimeoutError("Timeout reading from socket"),
    ClusterDownError("CLUSTERDOWN The cluster is down"),
    MasterDownError("MASTERDOWN Link with MASTER is down"),
    TryAgainError("TRYAGAIN"),
    ReadOnlyError("READONLY You can't write against a read only replica."),
    SlotNotCoveredError("Slot 5 is not covered by the cluster"),
]
NOT_LOST = [
    IntegrityError("INSERT", {}, PgError("23505")),
    DBAPIError("INSERT", {}, PgError("22P02")),
    redis.ResponseError("WRONGTYPE"),
    ValueError("a bug"),
    # A command whose keys span slots: a bug, not a cluster failing over.
    RedisClusterException("Keys in request don't hash to the same slot"),
    # A bug in a fallback that runs while an outage is handled is still a bug (a 500).
    raised_during(redis.ConnectionError("Connection refused"), KeyError("cache")),
]


@pytest.mark.parametrize("error", LOST)
def test_lost_connections_are_outages(error: Exception) -> None:
    assert is_outage(error)


@pytest.mark.parametrize("error", NOT_LOST)
def test_other_errors_are_not(error: Exception) -> None:
    assert not is_outage(error)
    assert not is_transient(error)


@pytest.mark.parametrize("error", LOST)  # raised during: the stream retries the first
def test_lost_connections_are_transient_for_consumers(error: Exception) -> None:
    assert is_transient(error) or error.__context__ is not None


@pytest.mark.parametrize(("error", "status"), [(e, 503) for e in LOST] +
                         [(e, 500) for e in NOT_LOST])
def test_the_edge_answers_503_with_retry_after_for_every_outage(error: Exception,
                                                                 status: int) -> None:
    app = Flask("services.example.app")
    register_error_handlers(app)

    def fail() -> None:
        raise error

    app.add_url_rule("/fail", "fail", fail)
    response = app.test_client().get("/fail")
    assert response.status_code == status
    assert (response.headers.get("Retry-After") == "1") is (status == 503)
