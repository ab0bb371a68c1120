"""The daily transfer: the endpoint, the CLI and Celery (schedule, task, a real worker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime, time
from pathlib import Path

from celery.schedules import crontab
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.task_service.adapters.event_store import APPEND_LOCK_KEY
from services.task_service.celery_app import TRANSFER_TASK, create_celery
from services.task_service.config import Settings
from tests.polling import wait_for
from tests.tokens import TokenFactory


def transfers(engine: Engine) -> list[tuple[str, str]]:
    """(date, event id) of every stored DailyTransferRequested."""
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT data->>'date', event_id::text, task_id FROM events "
            "WHERE type = 'DailyTransferRequested' ORDER BY seq")).all()
    assert all(row.task_id is None for row in rows)
    return [(row[0], row[1]) for row in rows]


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment a worker or beat process of this test runs with."""
    return {**os.environ, "TASKS_DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.common.redis_url, "REDIS_NAMESPACE": settings.common.namespace,
            "TASKSTREAM_ENV": "test"}


def test_endpoint_is_idempotent_per_date(client: FlaskClient, tokens: TokenFactory,
                                         engine: Engine) -> None:
    """202 with date and event id; the same date again → the same event id."""
    first = client.post("/admin/transfer", json={"date": "2025-04-05"}, headers=tokens.headers())
    assert first.status_code == 202
    again = client.post("/admin/transfer", json={"date": "2025-04-05"}, headers=tokens.headers())
    assert again.get_json() == first.get_json()
    assert first.get_json()["date"] == "2025-04-05"
    today = client.post("/admin/transfer", headers=tokens.headers())
    assert today.status_code == 202
    assert today.get_json()["date"] == datetime.now(UTC).date().isoformat()
    assert [d for d, _ in transfers(engine)] == ["2025-04-05", today.get_json()["date"]]
    bad = client.post("/admin/transfer", json={"date": "05/04/2025"}, headers=tokens.headers())
    assert bad.status_code == 422


def test_concurrent_requests_for_one_date_store_one_event(make_app, tokens: TokenFactory,
                                                          engine: Engine) -> None:
    """Racing callers all get the one event id."""
    app = make_app()
    barrier = threading.Barrier(6)
    ids: list[str] = []

    def send() -> None:
        barrier.wait()
        ids.append(app.test_client().post("/admin/transfer", json={"date": "2025-01-01"},
                                          headers=tokens.headers()).get_json()["event_id"])

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(set(ids)) == 1 and len(transfers(engine)) == 1


def test_cli_transfer_uses_the_same_code(settings: Settings, engine: Engine,
                                         monkeypatch) -> None:
    """`taskstream transfer --date D` twice: one event."""
    from services.cli import main

    for key, value in worker_env(settings).items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    first = runner.invoke(main, ["transfer", "--date", "2025-03-03"])
    second = runner.invoke(main, ["transfer", "--date", "2025-03-03"])
    assert first.exit_code == 0, first.output
    assert "2025-03-03 requested" in first.output and "already requested" in second.output
    assert len(transfers(engine)) == 1


def test_beat_schedule_follows_the_configuration(settings: Settings) -> None:
    """Default 00:05 UTC; TRANSFER_TIME/TRANSFER_TIMEZONE move it; keys stay in the namespace."""
    default = create_celery(lambda: settings)
    entry = default.conf.beat_schedule["daily-transfer"]
    assert entry["task"] == TRANSFER_TASK
    assert entry["schedule"] == crontab(hour=0, minute=5)
    assert default.conf.timezone == "UTC"
    assert default.conf.broker_transport_options["global_keyprefix"] == (
        f"{settings.common.namespace}:celery:")
    moved = create_celery(lambda: replace(settings, transfer_time=time(7, 30),
                                          transfer_timezone="Europe/Paris"))
    assert moved.conf.beat_schedule["daily-transfer"]["schedule"] == crontab(hour=7, minute=30)
    assert moved.conf.timezone == "Europe/Paris"


def test_the_task_run_twice_for_one_date_appends_one_event(settings: Settings,
                                                           engine: Engine) -> None:
    """Running the Celery task again for a date changes nothing."""
    celery = create_celery(lambda: settings)
    task = celery.tasks[TRANSFER_TASK]
    first = task.apply(args=["2025-06-01"]).get()
    second = task.apply(args=["2025-06-01"]).get()
    assert first["created"] and not second["created"]
    assert first["event_id"] == second["event_id"]
    assert transfers(engine) == [("2025-06-01", first["event_id"])]


def test_a_real_worker_and_beat_start_and_the_worker_runs_the_task(
        settings: Settings, engine: Engine, tmp_path: Path) -> None:
    """The Procfile's worker consumes the task from Redis; beat starts with the schedule."""
    celery_bin = str(Path(sys.executable).with_name("celery"))
    env = worker_env(settings)
    worker = subprocess.Popen(
        [celery_bin, "--app", "services.task_service.celery_app", "worker", "--loglevel",
         "INFO", "--concurrency", "1", "--hostname", f"test-{settings.common.namespace}@%h"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    beat = subprocess.Popen(
        [celery_bin, "--app", "services.task_service.celery_app", "beat", "--loglevel", "INFO",
         "--schedule", str(tmp_path / "celerybeat-schedule")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        create_celery(lambda: settings).send_task(TRANSFER_TASK, args=["2025-07-04"])
        wait_for(lambda: transfers(engine), timeout=60)
        assert [d for d, _ in transfers(engine)] == ["2025-07-04"]
    finally:
        for process in (worker, beat):
            process.terminate()
        worker_log, _ = worker.communicate(timeout=30)
        beat_log, _ = beat.communicate(timeout=30)
    assert "Daily transfer for 2025-07-04 requested" in worker_log, worker_log
    assert "beat: Starting..." in beat_log, beat_log


def _start_worker(env: dict[str, str], name: str) -> subprocess.Popen[str]:
    celery_bin = str(Path(sys.executable).with_name("celery"))
    return subprocess.Popen(
        [celery_bin, "--app", "services.task_service.celery_app", "worker", "--loglevel",
         "INFO", "--concurrency", "1", "--hostname", f"{name}@%h"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
        start_new_session=True)  # its own group: the pool child dies with it


def _waiting_for_the_append_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        return bool(connection.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        )).scalar_one())


def test_a_transfer_whose_worker_is_killed_midway_runs_again_exactly_once(
        settings: Settings, engine: Engine) -> None:
    """acks_late: the task goes back to the queue when its worker dies before finishing."""
    env = {**worker_env(settings), "CELERY_REDELIVERY_SECONDS": "2"}
    with engine.connect() as blocker:  # holds the append lock: the task stops inside it
        blocker.execute(text("SELECT pg_advisory_lock(:key)"), {"key": APPEND_LOCK_KEY})
        doomed = _start_worker(env, f"doomed-{settings.common.namespace}")
        try:
            create_celery(lambda: settings).send_task(TRANSFER_TASK, args=["2025-08-01"])
            wait_for(lambda: _waiting_for_the_append_lock(engine), timeout=60)
        finally:
            os.killpg(doomed.pid, signal.SIGKILL)
            doomed.wait(timeout=30)
        blocker.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": APPEND_LOCK_KEY})
    assert transfers(engine) == []
    rescuer = _start_worker(env, f"rescuer-{settings.common.namespace}")
    try:
        wait_for(lambda: transfers(engine), timeout=60)
    finally:
        rescuer.terminate()
        rescuer.wait(timeout=30)
    assert [d for d, _ in transfers(engine)] == ["2025-08-01"]
