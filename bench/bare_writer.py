"""The floors of the write path for a Python program: the command's two inserts and its
commit, done by psycopg2 with nothing else.

`PGBENCH_SCRIPT` is that transaction for pgbench (C, almost no CPU of its own: what the
server commits). `PGBENCH_NUMBERED_SCRIPT` adds, after its commit, the least that numbering
events after commit asks of the server (`services.task_service.adapters.event_store`): a
second transaction that tries the sequencing lock and, holding it, gives the next seqs to the
committed unnumbered events, else waits for the step that holds it (shared). It is the
server's floor for a gap-free log whose commands commit concurrently.

`write_for` runs the two inserts in a writer process, as the appends benchmark runs
`create_task`; `create_app` serves them as `POST /task` under the services' gunicorn
settings, as the commands benchmark serves the task service. Either may follow each commit
with that numbering step (`numbered`): the floor of a Python program that keeps a gap-free
log the way the task service does. Each is the same work a command
must do before its own (validation, the numbering step that orders the log, auth, JSON), paid in a
Python process on the same two cores as the server.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import psycopg2
from flask import Flask, jsonify

from services.task_service.adapters.event_store import APPEND_LOCK_KEY

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
_NUMBER_PENDING = (
    "WITH head AS (SELECT coalesce(max(seq), 0) AS seq FROM events), "
    "due AS (SELECT id, row_number() OVER (ORDER BY id) AS rank FROM "
    "(SELECT id FROM events WHERE seq IS NULL ORDER BY id LIMIT 5000) AS oldest) "
    "UPDATE events SET seq = head.seq + due.rank FROM due, head WHERE events.id = due.id")
PGBENCH_NUMBERED_SCRIPT = (
    f"{PGBENCH_SCRIPT}BEGIN;\n"
    f"SELECT pg_try_advisory_xact_lock({APPEND_LOCK_KEY})::int AS numbering \\gset\n"
    f"\\if :numbering\n{_NUMBER_PENDING};\n"
    f"\\else\nSELECT pg_advisory_xact_lock_shared({APPEND_LOCK_KEY});\n\\endif\nCOMMIT;\n")


def write_once(connection: Any, numbered: bool = False) -> int:
    """The command's transaction on a psycopg2 connection, then (`numbered`) the numbering
    step of `PGBENCH_NUMBERED_SCRIPT` in a second one; the new task's id."""
    with connection.cursor() as cursor:
        cursor.execute(INSERT_TASK + " RETURNING id")
        task_id = int(cursor.fetchone()[0])
        cursor.execute(INSERT_EVENT)
    connection.commit()
    if numbered:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_try_advisory_xact_lock({APPEND_LOCK_KEY})")
            if cursor.fetchone()[0]:
                cursor.execute(_NUMBER_PENDING)
            else:
                cursor.execute(f"SELECT pg_advisory_xact_lock_shared({APPEND_LOCK_KEY})")
        connection.commit()
    return task_id


def write_for(dsn: str, seconds: float, numbered: bool = False) -> int:
    """Write tasks one transaction at a time for `seconds` (each `numbered` after its
    commit); how many."""
    connection = psycopg2.connect(dsn)
    done, deadline = 0, time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            write_once(connection, numbered)
            done += 1
    finally:
        connection.close()
    return done


def create_app() -> Flask:
    """`POST /task`: the command's transaction on this thread's connection to
    BARE_DATABASE_URL, answered 201 with the task's id (no auth, no body read); numbered
    after its commit when BARE_NUMBERED is set."""
    app = Flask(__name__)
    dsn = os.environ["BARE_DATABASE_URL"]
    numbered = bool(os.environ.get("BARE_NUMBERED"))
    local = threading.local()

    @app.post("/task")
    def task():  # type: ignore[no-untyped-def]
        if getattr(local, "connection", None) is None:
            local.connection = psycopg2.connect(dsn)
        return jsonify({"id": write_once(local.connection, numbered)}), 201

    return app
