"""The daily transfer: the endpoint, the CLI, the schedule's runs, Celery (real worker, beat)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from urllib.parse import urlparse

from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.task_service.adapters.event_store import APPEND_LOCK_KEY, LAST_SCHEDULED
from services.task_service.config import Settings
from services.task_service.domain.model import Context
from services.task_service.entrypoints.celery_app import SCHEDULER, TRANSFER_TASK, create_celery
from services.task_service.service_layer.transfer import Schedule, run_schedule
from services.task_service.service_layer.unit_of_work import UnitOfWork
from testbed.polling import wait_for
from testbed.tokens import TokenFactory
from tests.proxy import CuttableProxy

SCHEDULE = Schedule(time(0, 5), "America/Los_Angeles")  # 07:05 UTC in summer
CONTEXT = Context(SCHEDULER, "test")


def transfers(engine: Engine) -> list[tuple[str, str, bool]]:
    """(date, event id, scheduled) of every stored DailyTransferRequested, in order."""
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT data->>'date', event_id::text, (data->>'scheduled')::boolean, task_id "
            "FROM events WHERE type = 'DailyTransferRequested' ORDER BY seq")).all()
    assert all(row.task_id is None for row in rows)
    return [(row[0], row[1], row[2]) for row in rows]


def scheduled_dates(engine: Engine) -> list[str]:
    """The dates of the schedule's transfer events, in order."""
    return [day for day, _, scheduled in transfers(engine) if scheduled]


def at(moment: str):
    """A clock stopped at an ISO moment."""
    return lambda: datetime.fromisoformat(moment)


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment a worker or beat process of this test runs with."""
    return {**os.environ, "TASKS_DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.common.redis_url, "REDIS_NAMESPACE": settings.common.namespace,
            "TASKSTREAM_ENV": "test"}


def test_each_request_is_an_event_of_its_own(client: FlaskClient, tokens: TokenFactory,
                                             engine: Engine) -> None:
    """202 with the date and this request's own event id; no date → today."""
    first = client.post("/admin/transfer", json={"date": "2025-04-05"}, headers=tokens.headers())
    again = client.post("/admin/transfer", json={"date": "2025-04-05"}, headers=tokens.headers())
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.get_json()["date"] == again.get_json()["date"] == "2025-04-05"
    assert first.get_json()["event_id"] != again.get_json()["event_id"]
    today = client.post("/admin/transfer", headers=tokens.headers())
    assert today.status_code == 202
    assert today.get_json()["date"] == datetime.now(UTC).date().isoformat()
    assert transfers(engine) == [
        ("2025-04-05", first.get_json()["event_id"], False),
        ("2025-04-05", again.get_json()["event_id"], False),
        (today.get_json()["date"], today.get_json()["event_id"], False)]
    bad = client.post("/admin/transfer", json={"date": "05/04/2025"}, headers=tokens.headers())
    assert bad.status_code == 422


def test_cli_transfer_twice_requests_twice(settings: Settings, engine: Engine,
                                           monkeypatch) -> None:
    """`taskstream transfer --date D` twice: two events for D."""
    from services.entrypoints.cli import main

    for key, value in worker_env(settings).items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    outputs = [runner.invoke(main, ["transfer", "--date", "2025-03-03"]) for _ in range(2)]
    assert [result.exit_code for result in outputs] == [0, 0], outputs[0].output
    assert all("Transfer for 2025-03-03 requested" in result.output for result in outputs)
    assert [(day, scheduled) for day, _, scheduled in transfers(engine)] == [
        ("2025-03-03", False), ("2025-03-03", False)]


def test_the_schedule_runs_once_per_date_in_its_zone(engine: Engine) -> None:
    """Due at 00:05 in Los Angeles: not before, once after, whatever the UTC date says."""
    uow = UnitOfWork(engine)
    first = run_schedule(uow, SCHEDULE, CONTEXT, at("2025-06-02T07:04:00+00:00"))
    assert [r.date for r in first] == [date(2025, 6, 1)]  # 00:04 in LA: June 1st's run is due
    assert run_schedule(uow, SCHEDULE, CONTEXT, at("2025-06-02T07:04:59+00:00")) == []
    second = run_schedule(uow, SCHEDULE, CONTEXT, at("2025-06-02T07:05:00+00:00"))
    assert [r.date for r in second] == [date(2025, 6, 2)]
    assert run_schedule(uow, SCHEDULE, CONTEXT, at("2025-06-03T06:59:00+00:00")) == []
    assert transfers(engine) == [("2025-06-01", first[0].event_id, True),
                                 ("2025-06-02", second[0].event_id, True)]


def test_runs_missed_while_nothing_checked_are_made_up_a_week_at_most(engine: Engine) -> None:
    """After days without a check every missed date runs once; after weeks, the last seven."""
    uow = UnitOfWork(engine)
    run_schedule(uow, SCHEDULE, CONTEXT, at("2025-06-02T08:00:00+00:00"))
    made = run_schedule(uow, SCHEDULE, CONTEXT, at("2025-06-05T08:00:00+00:00"))
    assert [r.date.isoformat() for r in made] == ["2025-06-03", "2025-06-04", "2025-06-05"]
    made = run_schedule(uow, SCHEDULE, CONTEXT, at("2025-07-05T08:00:00+00:00"))
    assert [r.date.day for r in made] == [29, 30, 1, 2, 3, 4, 5]
    assert len(scheduled_dates(engine)) == len(set(scheduled_dates(engine))) == 11


def test_an_explicit_request_does_not_stand_in_for_the_scheduled_run(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """A transfer asked for by hand is not the day's scheduled one, which still runs."""
    client.post("/admin/transfer", json={"date": "2025-06-02"}, headers=tokens.headers())
    made = run_schedule(UnitOfWork(engine), SCHEDULE, CONTEXT, at("2025-06-02T08:00:00+00:00"))
    assert [r.date for r in made] == [date(2025, 6, 2)]
    assert [(d, s) for d, _, s in transfers(engine)] == [
        ("2025-06-02", False), ("2025-06-02", True)]


def test_concurrent_checks_make_one_run(engine: Engine) -> None:
    """Checks racing for the same due date store one scheduled event, and none fails."""
    barrier = threading.Barrier(6)
    made: list[int] = []
    failed: list[Exception] = []

    def check() -> None:
        barrier.wait()
        try:
            made.append(len(run_schedule(UnitOfWork(engine), SCHEDULE, CONTEXT,
                                         at("2025-06-02T08:00:00+00:00"))))
        except Exception as exc:  # a lost race would break the unique index
            failed.append(exc)

    threads = [threading.Thread(target=check) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert failed == [] and sorted(made) == [0, 0, 0, 0, 0, 1]
    assert scheduled_dates(engine) == ["2025-06-02"]


def test_the_last_scheduled_run_is_found_through_its_index(engine: Engine) -> None:
    """The check runs every minute: it must not scan the event store."""
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO events (seq, event_id, task_id, version, type, data, metadata, "
            "occurred_at) SELECT n, gen_random_uuid(), n, 1, 'TaskCreated', '{}', '{}', now() "
            "FROM generate_series(1, 20000) n"))
        connection.execute(text("ANALYZE events"))
    run_schedule(UnitOfWork(engine), SCHEDULE, CONTEXT, at("2025-06-02T08:00:00+00:00"))
    with engine.connect() as connection:
        plan = "\n".join(connection.execute(
            text(f"EXPLAIN {LAST_SCHEDULED.text}")).scalars())
    assert "uq_events_scheduled_transfer_date" in plan and "Seq Scan" not in plan


def test_the_task_run_twice_makes_the_due_run_once(settings: Settings, engine: Engine) -> None:
    """The Celery task is the schedule's check: a second run finds the date done."""
    celery = create_celery(lambda: settings)
    task = celery.tasks[TRANSFER_TASK]
    first = task.apply().get()
    second = task.apply().get()
    expected = Schedule(time(0, 5), "UTC").latest(datetime.now(UTC)).isoformat()
    assert [r["date"] for r in first] == [expected] and second == []
    assert transfers(engine) == [(expected, first[0]["event_id"], True)]


def _celery(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[str]:
    celery_bin = str(Path(sys.executable).with_name("celery"))
    with log.open("w") as out:
        return subprocess.Popen(
            [celery_bin, "--app", "services.task_service.entrypoints.celery_app", *args],
            env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)  # its own group: a worker's pool child dies with it


def _stop(*processes: subprocess.Popen[str]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def test_a_run_missed_while_redis_was_down_is_made_once_when_it_is_back(
        settings: Settings, engine: Engine, redis_url: str, tmp_path: Path) -> None:
    """Redis is down when the run falls due: beat and worker wait; then exactly one run."""
    target = urlparse(redis_url)
    proxy = CuttableProxy((target.hostname or "127.0.0.1", target.port or 6379))
    proxy.cut()
    due = datetime.now(UTC) - timedelta(minutes=1)
    schedule = Schedule(time(due.hour, due.minute), "UTC")
    run_schedule(UnitOfWork(engine), schedule, CONTEXT, lambda: due - timedelta(days=1))
    yesterday, today = (due.date() - timedelta(days=1)).isoformat(), due.date().isoformat()
    env = {**worker_env(settings), "REDIS_URL": f"redis://127.0.0.1:{proxy.port}{target.path}",
           "TRANSFER_TIME": due.strftime("%H:%M"), "TRANSFER_TIMEZONE": "UTC",
           "TRANSFER_CHECK_SECONDS": "0.5"}
    worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
    worker = _celery(env, worker_log, "worker", "--loglevel", "DEBUG", "--concurrency", "1",
                     "--hostname", f"w-{settings.common.namespace}@%h")
    beat = _celery(env, beat_log, "beat", "--loglevel", "DEBUG",
                   "--schedule", str(tmp_path / "celerybeat-schedule"))
    try:
        wait_for(lambda: beat_log.read_text().count("Connection error") >= 2, 60,
                 what="beat failing to reach Redis")
        assert scheduled_dates(engine) == [yesterday]
        proxy.restore()
        wait_for(lambda: scheduled_dates(engine) == [yesterday, today], 60,
                 what="the missed run")
        checks = worker_log.read_text().count("Scheduled transfers are up to date")
        wait_for(lambda: worker_log.read_text().count("Scheduled transfers are up to date")
                 >= checks + 2, 60, what="later checks")
        proxy.cut()  # beat's sends fail now; it keeps going
        wait_for(lambda: "Message Error" in beat_log.read_text(), 60, what="a failed send")
        proxy.restore()
        checks = worker_log.read_text().count("Scheduled transfers are up to date")
        wait_for(lambda: worker_log.read_text().count("Scheduled transfers are up to date")
                 >= checks + 2, 60, what="checks after the second outage")
    finally:
        _stop(worker, beat)
        proxy.close()
    assert scheduled_dates(engine) == [yesterday, today]
    assert f"Scheduled transfer for {today} requested" in worker_log.read_text()


def _waiting_for_the_append_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        return bool(connection.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        )).scalar_one())


def test_a_check_whose_worker_is_killed_midway_runs_again_exactly_once(
        settings: Settings, engine: Engine, tmp_path: Path) -> None:
    """acks_late: the task goes back to the queue when its worker dies before finishing."""
    env = {**worker_env(settings), "CELERY_REDELIVERY_SECONDS": "2"}
    name = settings.common.namespace
    with engine.connect() as blocker:  # holds the sequencing lock: the task stops inside it
        blocker.execute(text("SELECT pg_advisory_lock(:key)"), {"key": APPEND_LOCK_KEY})
        doomed = _celery(env, tmp_path / "doomed.log", "worker", "--concurrency", "1",
                         "--hostname", f"doomed-{name}@%h")
        try:
            create_celery(lambda: settings).send_task(TRANSFER_TASK)
            wait_for(lambda: _waiting_for_the_append_lock(engine), timeout=60)
        finally:
            os.killpg(doomed.pid, signal.SIGKILL)
            doomed.wait(timeout=30)
        blocker.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": APPEND_LOCK_KEY})
    assert transfers(engine) == []
    rescuer = _celery(env, tmp_path / "rescuer.log", "worker", "--concurrency", "1",
                      "--hostname", f"rescuer-{name}@%h")
    try:
        wait_for(lambda: transfers(engine), timeout=60)
    finally:
        _stop(rescuer)
    expected = Schedule(time(0, 5), "UTC").latest(datetime.now(UTC)).isoformat()
    assert scheduled_dates(engine) == [expected]
