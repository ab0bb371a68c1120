"""Each process stopped by SIGTERM, as `docker-compose stop` sends it: a clean exit, well
inside the grace period, with the line that says it stopped (docs/operations.md)."""

from __future__ import annotations

import time

from tests.containers.smoke import Checks
from tests.containers.stack import PROCESSES, SERVERS, ComposeStack

GRACE_SECONDS = 30
# The last words of each process on SIGTERM. Celery beat says nothing as it stops: its exit
# code and the time it took are what show that it stopped by itself.
STOP_LINES = {
    "gateway": "Shutting down: Master",
    "auth": "Shutting down: Master",
    "tasks": "Shutting down: Master",
    "logger": "Shutting down: Master",
    "relay": "Relay stopped",
    "projector": " stopped",
    "worker": "Warm shutdown",
}


def stop_each(stack: ComposeStack, checks: Checks) -> None:
    """Stop every process, then Redis and PostgreSQL, one at a time, and check each stop."""
    for service in (*PROCESSES, *reversed(SERVERS)):
        started = time.monotonic()
        stack("stop", "-t", str(GRACE_SECONDS), service)
        took = time.monotonic() - started
        state = stack.state(service)
        checks.expect(f"{service} exits 0 on SIGTERM ({took:.1f} s)",
                      state["ExitCode"] == 0 and took < GRACE_SECONDS - 5, state)
        line = STOP_LINES.get(service)
        if line:
            tail = stack.logs(service)[-2000:]
            checks.expect(f"{service} logs that it stopped", line in tail, tail)
