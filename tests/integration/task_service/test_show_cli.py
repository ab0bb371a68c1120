"""`taskstream tasks show ID [--as-of T]`: a task as it is or was, from its events."""

from __future__ import annotations

import json

from sqlalchemy.engine import Engine

from services.task_service.domain.model import CreateTask, DeleteTask, UpdateTask
from services.task_service.service_layer.tasks import create_task, delete_task, update_task
from services.task_service.service_layer.unit_of_work import UnitOfWork
from tests.integration.task_service.test_event_log_cli import CONTEXT, cli_env, invoke

__all__ = ["cli_env"]  # the fixture, used here as in the event log's CLI tests


def test_show_prints_the_task_now_and_as_it_was(engine: Engine, cli_env: dict[str, str]
                                                ) -> None:
    created = create_task(UnitOfWork(engine), CreateTask("Draft", priority="low"), CONTEXT)
    task_id = created.body["id"]
    changed = update_task(UnitOfWork(engine), UpdateTask(task_id, {"title": "Final"}), CONTEXT)
    now = invoke("tasks", "show", str(task_id))
    assert now.exit_code == 0, now.output
    assert json.loads(now.stdout) == changed.body
    then = invoke("tasks", "show", str(task_id), "--as-of", str(created.position))
    assert json.loads(then.stdout) == created.body
    at_time = invoke("tasks", "show", str(task_id), "--as-of", created.body["created_at"])
    assert json.loads(at_time.stdout) == created.body


def test_show_refuses_a_task_before_its_time_deleted_or_unknown_and_a_bad_point(
        engine: Engine, cli_env: dict[str, str]) -> None:
    task_id = create_task(UnitOfWork(engine), CreateTask("t"), CONTEXT).body["id"]
    early = invoke("tasks", "show", str(task_id), "--as-of", "2000-01-01T00:00:00Z")
    assert early.exit_code == 1 and "did not exist yet" in early.output
    assert invoke("tasks", "show", str(task_id), "--as-of", "soon").exit_code == 2
    delete_task(UnitOfWork(engine), DeleteTask(task_id), CONTEXT)
    for missing in (task_id, 99):
        gone = invoke("tasks", "show", str(missing))
        assert gone.exit_code == 1 and f"Task {missing} not found" in gone.output
