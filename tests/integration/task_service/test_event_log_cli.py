"""`taskstream events republish|show|tail` and the relay's Prometheus metrics."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import redis
import requests
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine

from services.embedded import free_port
from services.entrypoints.cli import main
from services.task_service.config import Settings
from services.task_service.domain.model import Context, CreateTask, UpdateTask
from services.task_service.service_layer.tasks import create_task, update_task
from services.task_service.service_layer.unit_of_work import UnitOfWork
from shared.events import Actor, decode
from testbed.polling import wait_for
from tests.integration.task_service.helpers import stream_ids, stream_seqs

CONTEXT = Context(Actor(3, "operator", "admin"), "req-ops")
TASKSTREAM = str(Path(sys.executable).with_name("taskstream"))


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the CLI (in process and in subprocesses) at the test's database and namespace."""
    env = {"TASKS_DATABASE_URL": settings.database_url, "REDIS_URL": settings.common.redis_url,
           "REDIS_NAMESPACE": settings.common.namespace, "TASKSTREAM_ENV": "test",
           "LOG_FORMAT": "text"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **env}


@pytest.fixture
def stream(settings: Settings) -> str:
    """The test's stream key."""
    return settings.common.stream_key()


def invoke(*args: str) -> Result:
    """Run `taskstream <args>` in process."""
    return CliRunner().invoke(main, list(args))


def write_tasks(engine: Engine, count: int) -> list[int]:
    """Create tasks (one event each); return their ids."""
    return [create_task(UnitOfWork(engine), CreateTask(f"t{i}"), CONTEXT).body["id"]
            for i in range(count)]


def test_republish_fills_a_lost_stream_and_is_idempotent(
        engine: Engine, redis_client: redis.Redis, stream: str, cli_env: dict[str, str]) -> None:
    """From an empty stream every event is published in order; a second run adds nothing."""
    write_tasks(engine, 5)
    first = invoke("events", "republish", "--from-seq", "1", "--batch-size", "2")
    assert first.exit_code == 0, first.output
    assert "Republished 5 events" in first.output
    assert "events/s, ETA" in first.output  # the progress line
    assert stream_seqs(redis_client, stream) == [1, 2, 3, 4, 5]
    again = invoke("events", "republish", "--from-seq", "1")
    assert again.exit_code == 0, again.output
    assert "Republished 0 events" in again.output and "at or below the stream head" in again.output
    assert stream_seqs(redis_client, stream) == [1, 2, 3, 4, 5]


def test_republish_adds_only_what_is_missing_above_the_head(
        engine: Engine, redis_client: redis.Redis, stream: str, cli_env: dict[str, str]) -> None:
    """A stream behind the store gets its tail; a from-seq past head + 1 is refused."""
    write_tasks(engine, 3)
    assert invoke("events", "republish").exit_code == 0
    write_tasks(engine, 3)
    refused = invoke("events", "republish", "--from-seq", "6")
    assert refused.exit_code == 2
    assert "missing for ever" in refused.output
    assert stream_seqs(redis_client, stream) == [1, 2, 3]
    caught_up = invoke("events", "republish", "--from-seq", "4")
    assert caught_up.exit_code == 0, caught_up.output
    assert "Republished 3 events" in caught_up.output
    assert stream_seqs(redis_client, stream) == [1, 2, 3, 4, 5, 6]


def test_rebuild_stream_restores_entries_missing_below_the_head(
        engine: Engine, redis_client: redis.Redis, stream: str, cli_env: dict[str, str]) -> None:
    """An entry deleted below the head comes back only with --rebuild-stream."""
    write_tasks(engine, 4)
    assert invoke("events", "republish").exit_code == 0
    redis_client.xgroup_create(stream, "some-consumer", id="0")
    redis_client.xdel(stream, "2-0")
    plain = invoke("events", "republish", "--from-seq", "1")
    assert plain.exit_code == 0 and "Republished 0 events" in plain.output
    assert stream_ids(redis_client, stream) == [1, 3, 4]
    assert invoke("events", "republish", "--from-seq", "2",
                  "--rebuild-stream").exit_code == 2
    rebuilt = invoke("events", "republish", "--rebuild-stream")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "Deleted" in rebuilt.output and "Republished 4 events" in rebuilt.output
    assert stream_seqs(redis_client, stream) == [1, 2, 3, 4]
    assert redis_client.xinfo_groups(stream) == []


def test_show_prints_one_event_by_seq_or_event_id(
        engine: Engine, cli_env: dict[str, str]) -> None:
    """Pretty JSON of the stored envelope; unknown → exit 1, nonsense → exit 2."""
    task_id = write_tasks(engine, 2)[1]
    update_task(UnitOfWork(engine), UpdateTask(task_id, {"status": "completed"}), CONTEXT)
    by_seq = invoke("events", "show", "3")
    assert by_seq.exit_code == 0, by_seq.output
    shown = json.loads(by_seq.output)
    assert (shown["seq"], shown["type"], shown["task_id"], shown["version"]) == (
        3, "TaskStatusChanged", task_id, 2)
    assert shown["data"] == {"previous_status": "active", "new_status": "completed"}
    assert shown["actor"] == {"id": 3, "username": "operator", "role": "admin"}
    assert by_seq.output.startswith("{\n  ")
    by_id = invoke("events", "show", shown["event_id"])
    assert by_id.exit_code == 0 and json.loads(by_id.output) == shown
    missing = invoke("events", "show", "99")
    assert missing.exit_code == 1 and "No event 99" in missing.output
    assert invoke("events", "show", "not-an-id").exit_code == 2


def test_tail_prints_matching_events_as_readable_lines(
        engine: Engine, cli_env: dict[str, str]) -> None:
    """--type and --task filter; each line carries seq, type, task, version and data."""
    first, second = write_tasks(engine, 2)
    update_task(UnitOfWork(engine), UpdateTask(first, {"title": "renamed"}), CONTEXT)
    update_task(UnitOfWork(engine), UpdateTask(second, {"title": "other"}), CONTEXT)
    assert invoke("events", "republish").exit_code == 0
    updates = invoke("events", "tail", "--from-seq", "1", "--type", "TaskUpdated",
                     "--max-events", "2")
    assert updates.exit_code == 0, updates.output
    lines = updates.output.splitlines()
    assert len(lines) == 2 and all("TaskUpdated" in line for line in lines)
    assert lines[0].split()[0] == "3" and f"task={first} v2" in lines[0]
    assert '"renamed"' in lines[0] and "operator" in lines[0]
    one_task = invoke("events", "tail", "--from-seq", "1", "--task", str(second),
                      "--max-events", "2")
    assert [line.split()[0] for line in one_task.output.splitlines()] == ["2", "4"]


def _lines(process: subprocess.Popen[str]) -> queue.Queue[str]:
    found: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            found.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return found


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as for a job started in the background


@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["foreground", "background"])
def test_tail_follows_new_events_and_stops_cleanly_on_ctrl_c(
        engine: Engine, redis_client: redis.Redis, stream: str, cli_env: dict[str, str],
        sigint_ignored: bool) -> None:
    """Without --from-seq only new events are shown; SIGINT ends it with exit code 0.

    Also when it was started with SIGINT ignored, as a shell's background job is.
    """
    write_tasks(engine, 1)
    assert invoke("events", "republish").exit_code == 0
    process = subprocess.Popen([TASKSTREAM, "events", "tail"], env=cli_env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               preexec_fn=_ignore_sigint if sigint_ignored else None)
    try:
        lines = _lines(process)
        seq = 1

        def new_event_shown() -> bool:
            nonlocal seq
            write_tasks(engine, 1)
            seq += 1
            invoke("events", "republish")
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                return False
            assert line.split()[0] != "1", "an old event was shown"
            return "TaskCreated" in line

        wait_for(new_event_shown, timeout=30)
        process.send_signal(signal.SIGINT)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert "Traceback" not in "".join(rest)


def test_relay_serves_lag_and_published_count_on_its_metrics_port(
        engine: Engine, redis_client: redis.Redis, stream: str, cli_env: dict[str, str]) -> None:
    """`taskstream relay` with RELAY_METRICS_PORT exposes the counter and the lag gauge."""
    write_tasks(engine, 7)
    port = free_port()
    process = subprocess.Popen([TASKSTREAM, "relay"], env={
        **cli_env, "RELAY_METRICS_PORT": str(port), "RELAY_POLL_SECONDS": "0.2"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def metrics() -> dict[str, float]:
        try:
            body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except requests.RequestException:
            return {}
        return {name: float(value) for name, value in (
            line.split() for line in body.splitlines()
            if line.startswith(("taskstream_relay_published_total ",
                                "taskstream_relay_lag_events ")))}

    try:
        wait_for(lambda: metrics().get("taskstream_relay_published_total") == 7, 30)
        assert metrics()["taskstream_relay_lag_events"] == 0
        write_tasks(engine, 2)
        wait_for(lambda: metrics().get("taskstream_relay_published_total") == 9, 30)
        assert [decode(p).seq for p in (f[b"event"] for _, f in redis_client.xrange(stream))
                ] == list(range(1, 10))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
