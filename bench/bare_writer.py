"""The floors of the write path for a Python program: the command's two inserts and its
commit, done by psycopg2 with nothing else.

`PGBENCH_SCRIPT` is that transaction for pgbench (C, almost no CPU of its own: what the
server commits). `write_for` runs it in a writer process, as the appends benchmark runs
`create_task`; `create_app` serves it as `POST /task` under the services' gunicorn settings,
as the commands benchmark serves the task service. Each is the same work a command must do
before its own (validation, the numbering step that orders the log, auth, JSON), paid in a
Python process on the same two cores as the server.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import psycopg2
from flask import Flask, jsonify

# The rows a create writes: a task, and its TaskCreated event.
INSERT_TASK = ("INSERT INTO task_manager (title, status, priority, created_by, created_at, "
               "updated_at, version) VALUES ('pgbench task', 'active', 'medium', 1, now(), "
               "now(), 1)")
INSERT_EVENT = ("INSERT INTO events (event_id, task_id, version, type, data, metadata, "
                "occurred_at) VALUES (gen_random_uuid(), lastval(), 1, 'TaskCreated', "
                "'{\"title\": \"pgbench task\", \"status\": \"active\", \"priority\": "
                "\"medium\"}', '{\"actor\": {\"id\": 1, \"username\": \"bench\", "
                "\"role\": \"admin\"}}', now())")
PGBENCH_SCRIPT = f"BEGIN;\n{INSERT_TASK};\n{INSERT_EVENT};\nCOMMIT;\n"


def write_once(connection: Any) -> int:
    """The command's transaction on a psycopg2 connection; the new task's id."""
    with connection.cursor() as cursor:
        cursor.execute(INSERT_TASK + " RETURNING id")
        task_id = int(cursor.fetchone()[0])
        cursor.execute(INSERT_EVENT)
    connection.commit()
    return task_id


def write_for(dsn: str, seconds: float) -> int:
    """Write tasks one transaction at a time for `seconds`; how many."""
    connection = psycopg2.connect(dsn)
    done, deadline = 0, time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            write_once(connection)
            done += 1
    finally:
        connection.close()
    return done


def create_app() -> Flask:
    """`POST /task`: the command's transaction on this thread's connection to
    BARE_DATABASE_URL, answered 201 with the task's id (no auth, no body read)."""
    app = Flask(__name__)
    dsn = os.environ["BARE_DATABASE_URL"]
    local = threading.local()

    @app.post("/task")
    def task():  # type: ignore[no-untyped-def]
        if getattr(local, "connection", None) is None:
            local.connection = psycopg2.connect(dsn)
        return jsonify({"id": write_once(local.connection)}), 201

    return app
