"""Which errors mean that PostgreSQL or Redis is out of reach for now, in one place.

A request that meets one answers 503 with `Retry-After` (`shared.errors`); a background
process waits and tries again (`shared.stream.transient`). However the failure surfaces —
wrapped by SQLAlchemy or raw from psycopg2 (statements sent on the DBAPI connection), a
connection SQLAlchemy invalidated whatever its error class, an `InterfaceError` from a
connection that is already closed, a Redis server restarting, a cluster failing over —
it is classified here and nowhere else.
"""

from __future__ import annotations

import psycopg2
import redis
from redis.exceptions import ClusterError, ReadOnlyError, SlotNotCoveredError, TryAgainError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# Errors raised without an answer from the server: the connection is gone or was refused.
LOST = (OperationalError, InterfaceError, psycopg2.OperationalError, psycopg2.InterfaceError)
OPERATIONAL = (OperationalError, psycopg2.OperationalError)
# SQLSTATEs of a server going away or not ready yet (besides class 08, connection
# exceptions): admin shutdown, crash shutdown, cannot connect now, too many connections, and
# a server that became a read-only standby (a failover the pool has not followed yet).
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300", "25006"})
# SQLSTATEs of a conflict a retry gets past: serialization failure, deadlock, lock timeout.
CONFLICT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
# Redis errors of a server or cluster that is down, restarting or failing over (ClusterError
# covers CLUSTERDOWN, MASTERDOWN and redirections that never settle). Not the base
# RedisClusterException: it is also what a command whose keys span slots raises, a bug.
REDIS_OUTAGES = (redis.ConnectionError, redis.TimeoutError, ClusterError, TryAgainError,
                 ReadOnlyError, SlotNotCoveredError)
# What may carry an outage in the error it was raised from or while handling: the drivers'
# and SQLAlchemy's own errors. Anything else (a bug in a fallback) is what it says it is.
DRIVER_ERRORS = (DBAPIError, psycopg2.Error, redis.RedisError)


def is_outage(exc: BaseException) -> bool:
    """True when `exc` (or, for a driver's error, one it was raised from or while handling)
    says the database or Redis could not be reached, lost the connection or could not run a
    statement for operational reasons (any `OperationalError`: a timeout, resources):
    nothing about the request itself."""
    seen: BaseException | None = exc
    for _ in range(5):  # the error, and what a driver error was raised from or during
        if seen is None:
            return False
        if _is_outage(seen) or isinstance(seen, OPERATIONAL):
            return True
        if not isinstance(seen, DRIVER_ERRORS):
            return False
        seen = seen.__cause__ or seen.__context__
    return False


def is_transient(exc: BaseException) -> bool:
    """True for an outage or a conflict that a retry gets past: never the event's fault."""
    return _is_outage(exc) or _sqlstate(exc) in CONFLICT_SQLSTATES


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, (*REDIS_OUTAGES, PoolTimeout)):  # PoolTimeout: no connection in time
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, (DBAPIError, psycopg2.Error)):
        return False
    code = _sqlstate(exc)
    if code is None:  # no answer from the server: the connection broke or was refused
        return isinstance(exc, LOST) or isinstance(getattr(exc, "orig", None), LOST)
    return code.startswith("08") or code in UNAVAILABLE_SQLSTATES


def _sqlstate(exc: BaseException) -> str | None:
    code = getattr(exc.orig if isinstance(exc, DBAPIError) else exc, "pgcode", None)
    return code if isinstance(code, str) else None
