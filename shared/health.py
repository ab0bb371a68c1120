"""`/healthz` and `/readyz`: the process answers, and every dependency it needs answers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial

import redis
from flask import Flask, Response, jsonify
from sqlalchemy.engine import Engine

from shared.db import ping_database

log = logging.getLogger("taskstream.http")

ReadinessCheck = Callable[[], object]  # raises when the dependency is not ready
READINESS_MAX_AGE_SECONDS = 1.0


def storage_checks(engine: Engine, client: redis.Redis) -> dict[str, ReadinessCheck]:
    """The checks of a service on PostgreSQL and Redis: each answers a ping."""
    return {"database": partial(ping_database, engine), "redis": client.ping}


class ReadinessProbe:
    """Runs the readiness checks at most once per `max_age` seconds, for every caller.

    `/readyz` is public, so it must not let anyone hammer the databases: the result is
    kept for `max_age` seconds and callers arriving while a check runs wait for its result.
    Failures are logged in full here; callers learn only which dependency failed.
    """

    def __init__(self, checks: Mapping[str, ReadinessCheck],
                 max_age: float = READINESS_MAX_AGE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.checks = checks
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._result: dict[str, str] | None = None
        self._checked_at = 0.0

    def result(self) -> dict[str, str]:
        """`{name: "ok" | "error"}`, fresh or at most `max_age` seconds old."""
        with self._lock:
            if self._result is None or self.clock() - self._checked_at >= self.max_age:
                self._result = self._run_checks()
                self._checked_at = self.clock()
            return self._result

    def _run_checks(self) -> dict[str, str]:
        results: dict[str, str] = {}
        for name, check in self.checks.items():
            try:
                check()
                results[name] = "ok"
            except Exception as exc:  # a readiness probe reports every failure
                log.warning("readiness check %s failed: %s", name, exc)
                results[name] = "error"
        return results


def register_health(app: Flask, checks: Mapping[str, ReadinessCheck], *,
                    clock: Callable[[], float] = time.monotonic) -> None:
    """Add `/healthz` (the process answers) and `/readyz` (every dependency answers)."""
    probe = ReadinessProbe(checks, READINESS_MAX_AGE_SECONDS, clock)

    def healthz() -> Response:
        return jsonify({"status": "ok"})

    def readyz() -> tuple[Response, int]:
        results = probe.result()
        ready = all(value == "ok" for value in results.values())
        status = "ready" if ready else "unavailable"
        return jsonify({"status": status, "checks": results}), 200 if ready else 503

    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/readyz", "readyz", readyz)
