"""Relays run in threads of the test process, each stopped (and shown stopped) at the end."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from services.task_service.service_layer.relay import Relay

R = TypeVar("R", bound=Relay)


@contextmanager
def relays_in_threads() -> Iterator[Callable[[R], R]]:
    """Yield `run(relay)`, which starts the relay's loop in a thread and returns it."""
    started: list[tuple[Relay, threading.Thread]] = []

    def run(relay: R) -> R:
        thread = threading.Thread(target=relay.run, daemon=True)
        thread.start()
        started.append((relay, thread))
        return relay

    yield run
    for relay, thread in started:
        relay.stop()
        thread.join(10)
        assert not thread.is_alive(), "the relay did not stop"
