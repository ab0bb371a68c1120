"""Graceful lifecycle: SIGTERM lets work in hand finish; SIGKILL leaves nothing a restart trips on.

HTTP (gunicorn): a request in flight when SIGTERM arrives still gets its answer. Relay and
projector: SIGTERM finishes the batch in hand and exits 0. Each starts cleanly after SIGKILL
and the pipeline ends with every event exactly once.
"""

from __future__ import annotations

import io
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from services.embedded import free_port
from services.task_service.adapters.event_store import APPEND_LOCK_KEY
from testbed.polling import wait_for
from testbed.processes import ChaosStack, ManagedProcess
from tests.chaos.checks import (
    Findings,
    check_projections,
    check_stream,
    positions,
    stored_events,
    stream_entries,
    wait_for_quiescence,
)

GUNICORN = Path(sys.executable).with_name("gunicorn")


@pytest.fixture
def tasks_server(chaos: ChaosStack) -> Iterator[tuple[ManagedProcess, str]]:
    """A second task service (gunicorn) of this stack that the test may stop and kill."""
    port = free_port()
    server = ManagedProcess(
        "tasks-extra", [str(GUNICORN), "--config", "deploy/gunicorn.conf.py", "--bind",
                        f"127.0.0.1:{port}", "services.task_service.entrypoints.app:create_app()"],
        chaos.env, chaos.workdir)
    yield server, f"http://127.0.0.1:{port}"
    server.kill()


def start_ready(server: ManagedProcess, url: str) -> None:
    """Start the server and wait until it answers /readyz."""
    process = server.start()

    def ready() -> bool:
        assert process.poll() is None, server.logs()[-3000:]
        try:
            return requests.get(f"{url}/readyz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_for(ready, 60, interval=0.2, what="the task service to be ready")


def waiting_for_append_lock(chaos: ChaosStack) -> bool:
    """Some session is blocked on an advisory lock (ours is the only one around)."""
    return chaos.scalar("tasks", "SELECT count(*) FROM pg_locks "
                                 "WHERE locktype = 'advisory' AND NOT granted") > 0


def test_http_service_answers_the_request_in_flight_when_sigterm_arrives(
        chaos: ChaosStack, tasks_server: tuple[ManagedProcess, str]) -> None:
    server, url = tasks_server
    start_ready(server, url)
    headers = chaos.stack.login()
    replies: list[requests.Response] = []
    with chaos.engine("tasks").connect() as blocker:
        # Hold the sequencing lock: the request commits, then waits for its seq.
        blocker.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK_KEY})
        sender = threading.Thread(target=lambda: replies.append(requests.post(
            f"{url}/task", json={"title": "in flight at SIGTERM"}, headers=headers,
            timeout=60)))
        sender.start()
        wait_for(lambda: waiting_for_append_lock(chaos), 20, what="the request to block")
        server.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        wait_for(lambda: "Handling signal: term" in server.logs(), 10,
                   what="gunicorn to start its graceful stop")
        blocker.rollback()  # releases the lock: the request can finish now
    sender.join(60)
    assert server.process.wait(30) == 0  # type: ignore[union-attr]
    assert [r.status_code for r in replies] == [201], server.logs()[-3000:]
    assert replies[0].json()["title"] == "in flight at SIGTERM"


def test_http_service_starts_cleanly_after_sigkill(
        chaos: ChaosStack, tasks_server: tuple[ManagedProcess, str]) -> None:
    server, url = tasks_server
    start_ready(server, url)
    server.kill()  # the whole process group: master and workers, no cleanup at all
    start_ready(server, url)
    created = requests.post(f"{url}/task", json={"title": "after a SIGKILL"},
                            headers=chaos.stack.login(), timeout=30)
    assert created.status_code == 201, created.text
    assert server.terminate() == 0


def backlog(chaos: ChaosStack, rows: int) -> None:
    """Import `rows` tasks through the gateway (one event each)."""
    upload = "title,priority\n" + "".join(f"backlog {n},low\n" for n in range(rows))
    reply = chaos.stack.session.post(
        f"{chaos.stack.base_url}/upload-csv", headers=chaos.stack.login(),
        files={"file": ("backlog.csv", io.BytesIO(upload.encode()), "text/csv")}, timeout=60)
    assert reply.status_code == 201, reply.text


def exactly_once_everywhere(chaos: ChaosStack) -> Findings:
    """Wait for quiescence, then compare stream and projections with the store."""
    quiet = wait_for_quiescence(chaos, 60)
    events = stored_events(chaos)
    findings = Findings(events=len(events), checkpoint=quiet["checkpoint"])
    check_stream(stream_entries(chaos), events, findings)
    check_projections(chaos, events, findings)
    return findings


def killed_once_moving_then_exactly_once(chaos: ChaosStack, process: ManagedProcess,
                                         position: str, past: int) -> None:
    """Start `process`, SIGKILL it once `position` passes `past`, start it again; then every
    event must be in the stream and the projections exactly once.

    The caller gives it a fresh backlog first: a fast process may have got through the whole
    previous one before SIGTERM reached it, and would then have nothing to be killed in.
    """
    process.start()
    wait_for(lambda: positions(chaos)[position] > past, 30, what=f"{position} to move")
    process.kill()
    process.start()
    found = exactly_once_everywhere(chaos)
    assert found.problems() == [] and found.duplicated == 0 and found.lost == 0


def test_relay_finishes_its_batch_on_sigterm_and_recovers_from_sigkill(
        chaos: ChaosStack) -> None:
    relay = chaos.processes["relay"]
    wait_for_quiescence(chaos, 60)
    assert relay.terminate() == 0  # idle: stops at once
    before = positions(chaos)["stream_head"]
    backlog(chaos, 3000)
    relay.start()
    wait_for(lambda: positions(chaos)["stream_head"] > before, 30, what="publishing")
    assert relay.terminate() == 0
    assert "Relay stopped" in relay.logs()
    head, stored = positions(chaos)["stream_head"], positions(chaos)["store_head"]
    batch = int(chaos.env["RELAY_BATCH_SIZE"])
    assert head == stored or (head - before) % batch == 0, (before, head, stored)

    backlog(chaos, 3000)
    killed_once_moving_then_exactly_once(chaos, relay, "stream_head", head)


def _published_backlog(chaos: ChaosStack, rows: int) -> None:
    backlog(chaos, rows)
    wait_for(lambda: positions(chaos)["stream_head"] == positions(chaos)["store_head"], 30,
               what="the relay to publish the backlog")


def test_projector_finishes_its_batch_on_sigterm_and_recovers_from_sigkill(
        chaos: ChaosStack) -> None:
    projector = chaos.processes["projector"]
    wait_for_quiescence(chaos, 60)
    assert projector.terminate() == 0
    before = positions(chaos)["checkpoint"]
    _published_backlog(chaos, 3000)
    projector.start()
    wait_for(lambda: positions(chaos)["checkpoint"] > before, 30, what="applying")
    assert projector.terminate() == 0
    assert "stopped" in projector.logs().splitlines()[-1], projector.logs()[-2000:]
    stopped_at = positions(chaos)["checkpoint"]

    _published_backlog(chaos, 3000)
    killed_once_moving_then_exactly_once(chaos, projector, "checkpoint", stopped_at)
