"""The retention loop sweeps in batches and survives what a sweep may meet."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from services.webhooks_service.service_layer.retention import Retention


class Sweeps:
    """A prune that answers from a script, then stops the loop."""

    def __init__(self, stop: threading.Event, *answers: object) -> None:
        self.stop, self.answers, self.calls = stop, list(answers), 0

    def __call__(self, batch: int) -> tuple[int, int]:
        self.calls += 1
        answer = self.answers.pop(0)
        if not self.answers:
            self.stop.set()
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]


def database_error(kind: type[Exception]) -> Exception:
    return kind("DELETE FROM webhook_events", {}, Exception("lost"))


def test_a_sweep_goes_on_while_batches_come_back_full() -> None:
    stop = threading.Event()
    prune = Sweeps(stop, (2, 1), (2, 0), (1, 1))
    assert Retention(prune, interval=0, batch=2).sweep() == (5, 2)
    assert prune.calls == 3


@pytest.mark.parametrize("met", [IntegrityError, OperationalError])
def test_a_foreign_key_race_or_an_outage_postpones_the_sweep(met: type[Exception]) -> None:
    stop = threading.Event()
    prune = Sweeps(stop, database_error(met), (0, 0))
    Retention(prune, interval=0, batch=2).run(stop)
    assert prune.calls == 2  # the loop went on to the next interval


def test_a_programming_error_stops_the_loop() -> None:
    stop = threading.Event()
    with pytest.raises(ValueError):
        Retention(Sweeps(stop, ValueError("bug"), (0, 0)), interval=0, batch=2).run(stop)
