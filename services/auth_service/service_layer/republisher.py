"""Republishes the revocation marks from the database into Redis, every few seconds.

The database is the record of every revocation (`users.tokens_revoked_at`, written with the
change itself); Redis carries the copy that every verifier reads. A mark that could not be
written after its commit, or that Redis lost (a restart without persistence, `FLUSHALL`,
eviction), is back within `REPUBLISH_SECONDS`, and verifiers read the marks every second:
revoked tokens are refused again within about 3 s. Each served auth worker runs one
(`shared.background`); several writing the same marks is harmless, as a mark never moves back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

import redis
from sqlalchemy.exc import SQLAlchemyError

from services.auth_service.service_layer.accounts import Clock, utcnow
from services.auth_service.service_layer.unit_of_work import UnitOfWork
from shared.logs import first_line
from shared.revocation import MarkSink

log = logging.getLogger("taskstream.auth.republisher")

REPUBLISH_SECONDS = 2.0


class MarkRepublisher:
    """Copies every mark younger than a token can live from the database into `sink`."""

    def __init__(self, uow: Callable[[], UnitOfWork], sink: MarkSink, lifetime: float,
                 interval: float = REPUBLISH_SECONDS, clock: Clock = utcnow) -> None:
        self.uow, self.sink, self.clock = uow, sink, clock
        self.lifetime, self.interval = timedelta(seconds=lifetime), interval
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.failing = False

    def publish_once(self) -> int:
        """One indexed query, one Redis round trip; return how many marks were copied."""
        with self.uow() as uow:
            marks = uow.users.revocations_since(self.clock() - self.lifetime)
        self.sink.publish({user_id: at.timestamp() for user_id, at in marks.items()})
        return len(marks)

    def start(self) -> None:
        """Republish now and every `interval` seconds in a daemon thread (once)."""
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="mark-republisher",
                                           daemon=True)
            self.thread.start()

    def stop(self) -> None:
        """End the thread (a served process need not: the thread ends with it)."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join()

    def _run(self) -> None:
        while True:
            self._attempt()
            if self.stopping.wait(self.interval):
                return

    def _attempt(self) -> None:
        """Publish once; a failure is logged (once until it recovers), never raised."""
        try:
            self.publish_once()
        except (SQLAlchemyError, redis.RedisError, OSError) as exc:
            if not self.failing:
                log.warning("could not republish the revocation marks, retrying every "
                            "%.0f s: %s", self.interval, first_line(exc))
            self.failing = True
            return
        except Exception:
            log.exception("republishing the revocation marks failed; retrying")
            return
        if self.failing:
            log.info("revocation marks republished again")
        self.failing = False
