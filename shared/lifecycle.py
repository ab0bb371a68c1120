"""How a long-running process learns it should stop: SIGTERM or SIGINT set an event."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

log = logging.getLogger("taskstream.lifecycle")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_on_signals(name: str, then: Callable[[], None] | None = None) -> threading.Event:
    """An event set by SIGTERM or SIGINT (then `then()` runs), for a loop to check.

    The handlers are installed even where SIGINT was ignored (a process started in the
    background inherits that), so Ctrl-C and `kill -INT` always ask for a clean stop; the
    loop finishes what it holds instead of being interrupted mid-way.
    """
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        log.info("%s received signal %d; stopping", name, signum)
        stop.set()
        if then is not None:
            then()

    for signum in STOP_SIGNALS:
        signal.signal(signum, handle)
    return stop
