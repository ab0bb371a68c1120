"""`/readyz`: which dependency failed, never where it lives; checked at most once a second."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shared.health import register_health
from testbed.polling import wait_for

SECRET_HOST = "db-primary.internal.example:5432"


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def app_with(checks: dict[str, Callable[[], object]], clock: FakeClock) -> Flask:
    app = Flask("services.example.app")
    register_health(app, checks, clock=clock)
    return app


def unreachable_database() -> None:
    raise ConnectionError(f'could not connect to server at "{SECRET_HOST}" (10.1.2.3)')


def test_a_failed_check_names_the_dependency_but_not_its_address(
        caplog: pytest.LogCaptureFixture) -> None:
    client = app_with({"database": unreachable_database, "redis": lambda: True},
                      FakeClock()).test_client()
    with caplog.at_level(logging.WARNING, logger="taskstream.http"):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable",
                                   "checks": {"database": "error", "redis": "ok"}}
    body = response.get_data(as_text=True)
    assert "internal" not in body and "10.1.2.3" not in body
    assert SECRET_HOST in caplog.text  # the detail stays in the server's log


def counting(calls: list[int]) -> Callable[[], None]:
    def check() -> None:
        calls.append(1)

    return check


@pytest.fixture
def client_and_calls() -> tuple[FlaskClient, FakeClock, list[int]]:
    calls: list[int] = []
    clock = FakeClock()
    return app_with({"database": counting(calls)}, clock).test_client(), clock, calls


def test_the_result_is_reused_for_a_second(client_and_calls: tuple[FlaskClient, FakeClock,
                                                                  list[int]]) -> None:
    client, clock, calls = client_and_calls
    assert [client.get("/readyz").status_code for _ in range(5)] == [200] * 5
    assert len(calls) == 1
    clock.now += 0.99
    client.get("/readyz")
    assert len(calls) == 1
    clock.now += 0.01
    client.get("/readyz")
    assert len(calls) == 2


def test_concurrent_callers_share_one_check() -> None:
    callers = 8
    arrived: list[int] = []
    calls: list[int] = []

    def slow_check() -> None:
        calls.append(1)
        # Hold the check until every caller has reached the app, so they overlap with it.
        wait_for(lambda: len(arrived) == callers, timeout=10, interval=0.01,
                 what="every caller to arrive")

    app = app_with({"database": slow_check}, FakeClock())
    app.before_request(lambda: arrived.append(1))
    statuses: list[int] = []

    def call() -> None:
        statuses.append(app.test_client().get("/readyz").status_code)

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert statuses == [200] * callers
    assert len(calls) == 1
