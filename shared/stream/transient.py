"""Which errors are outages or conflicts that a retry gets past: never an event's fault."""

from __future__ import annotations

import redis
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# SQLSTATEs a retry gets past (besides class 08, connection exceptions): serialization
# failure, deadlock, lock timeout, too many connections, the server shutting down or starting.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "53300", "57P01", "57P02", "57P03"})


def is_transient(exc: BaseException) -> bool:
    """True for an outage or a conflict that a retry gets past: never the event's fault."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    code = getattr(exc.orig, "pgcode", None)
    if code is None:  # no answer from the server: the connection broke or was refused
        return exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))
    return code.startswith("08") or code in TRANSIENT_SQLSTATES

