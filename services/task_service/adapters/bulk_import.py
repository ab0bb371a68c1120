"""Bulk creation of tasks and their `TaskCreated` events: COPY batches, set-based inserts.

The validated rows arrive in batches in COPY text format, while the rest of the file is
still being parsed (`csv_import.CsvBatches`). Each batch is COPYed to a batch table whose
`id` defaults to the next value of `task_manager`'s own id sequence, so every row gets its
task id in file order as it lands; its tasks are inserted at once, without the sequencing
lock, and the batch joins the staging table the events are made from. Only the events
insert, once the last batch is in, runs under the lock (seq = head + the row's position:
numbering a million events after the commit, row by row, would cost more than inserting
them), so other writers' events wait as briefly as possible for their seqs. Their commits
never wait. Neither insert sorts anything. Event ids are UUIDv7 around the events' internal
ids (`event_id_sql`), ascending, so they append to the end of the `event_id` index instead
of landing at random places in it (a third of the insert's time with random UUIDs).

The SQL is made from the event contract: every field of `TaskCreated` (`CREATED_FIELDS`)
is computed once per row — from its CSV column, from the importing user, or else from
`CreateTask`'s default — and the task row and its event's data both take that value, typed
and formatted as the task table's column is. A field added to the contract and the table
needs nothing here.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import MISSING, fields
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Date, String, TextClause, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from services.task_service.adapters.event_store import (
    ID_SEQUENCE,
    EventStore,
    event_id_sql,
    event_metadata,
)
from services.task_service.adapters.orm import TaskRecord
from services.task_service.domain.model import CREATED_FIELDS, Context, CreateTask
from shared.events import unix_millis

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_ID_SEQUENCE = text("SELECT pg_get_serial_sequence('task_manager', 'id')")

def copy_text(rows: list[tuple[Any, ...]]) -> str:
    """Rows in COPY text format (NULL written as an empty field: no value is ever empty).

    Most batches hold no character COPY must escape; that is checked on the whole batch by
    counting separators, and only a batch that has one is escaped cell by cell.
    """
    encoded = "".join("\t".join(map(_plain, values)) + "\n" for values in rows)
    width = len(rows[0]) if rows else 0
    if (encoded.count("\n") == len(rows) and encoded.count("\t") == len(rows) * (width - 1)
            and "\\" not in encoded and "\r" not in encoded):
        return encoded
    return "".join("\t".join(_plain(v).translate(_COPY_ESCAPES) for v in values) + "\n"
                   for values in rows)


def _plain(value: Any) -> str:
    return "" if value is None else str(value)


def _column_type(name: str) -> str:
    """The SQL type a field is staged and cast as: the task table's (text for strings)."""
    kind = TaskRecord.__table__.c[name].type
    return "text" if isinstance(kind, String) else kind.compile(postgresql.dialect())


def as_json(name: str, expression: str) -> str:
    """The value as the event's data carries it (a date as `YYYY-MM-DD`)."""
    if isinstance(TaskRecord.__table__.c[name].type, Date):
        return f"to_char({expression}, 'YYYY-MM-DD')"
    return expression


def _default_parameter(name: str) -> str:
    """A field the CSV does not carry: a parameter holding `CreateTask`'s default."""
    if all(own.name != name or own.default is MISSING for own in fields(CreateTask)):
        raise ValueError(f"TaskCreated field {name!r} has no CSV column and no default")
    return f"CAST(:default_{name} AS {_column_type(name)})"


def created_values(columns: Sequence[str]) -> dict[str, str]:
    """How PostgreSQL computes each `TaskCreated` field of a staged row (a test compares the
    events they make with `created_event` of the same tasks)."""
    return {name: name if name in columns
            else "CAST(:user_id AS bigint)" if name == "created_by"
            else _default_parameter(name) for name in CREATED_FIELDS}


def _defaults(columns: Sequence[str]) -> dict[str, Any]:
    """The parameters of the fields the CSV does not carry."""
    return {f"default_{own.name}": own.default for own in fields(CreateTask)
            if own.name in CREATED_FIELDS and own.name not in columns}


class ImportSql(NamedTuple):
    """The statements of one CSV column layout."""

    stage: str  # with `{sequence}` to fill in
    copy: str
    insert_tasks: TextClause  # the batch's tasks, and the batch moved to staging
    insert_events: TextClause


@cache
def import_sql(columns: tuple[str, ...]) -> ImportSql:
    """The staging table, its COPY and the two inserts, for rows `(n, *columns)`."""
    staged = ", ".join(f"{name} {_column_type(name)}" for name in columns)
    values = created_values(columns)
    data = {name: as_json(name, expression) for name, expression in values.items()}
    # The event's data as `to_jsonb` of a row of the fields: a tenth faster over a million
    # rows than `jsonb_build_object` of the same (which looks up each argument's type).
    fields_row = ", ".join(f"{expression} AS {name}" for name, expression in data.items())
    return ImportSql(
        stage=f"CREATE TEMP TABLE csv_batch (n bigint, {staged}, "
              "id bigint DEFAULT nextval({sequence})) ON COMMIT DROP; "
              "CREATE TEMP TABLE csv_import (LIKE csv_batch) ON COMMIT DROP",
        copy=f"COPY csv_batch (n, {', '.join(columns)}) FROM STDIN WITH (NULL '')",
        insert_tasks=text(
            f"INSERT INTO task_manager (id, {', '.join(values)}, created_at, updated_at, "
            f"version) SELECT id, {', '.join(values.values())}, :now, :now, 1 FROM csv_batch; "
            "INSERT INTO csv_import SELECT * FROM csv_batch; TRUNCATE csv_batch"),
        insert_events=text(
            "INSERT INTO events (id, seq, event_id, task_id, version, type, data, metadata, "
            f"occurred_at) SELECT row_id, :head + n, {event_id_sql('row_id')}, id, 1, "
            "'TaskCreated', to_jsonb(fields), CAST(:metadata AS jsonb), :now "
            f"FROM (SELECT nextval('{ID_SEQUENCE}') AS row_id, csv_import.* FROM csv_import) "
            f"AS staged, LATERAL (SELECT {fields_row}) AS fields"),
    )


class BulkTaskWriter:
    """Writes a validated CSV's rows inside the unit of work's transaction."""

    def __init__(self, session: Session, events: EventStore) -> None:
        self.session = session
        self.events = events

    def insert_created(self, batches: Iterable[bytes], columns: tuple[str, ...],
                       context: Context, now: datetime) -> int:
        """COPY each batch of rows `(n, *columns)` and insert its tasks as it comes, then
        create every event; how many."""
        sql = import_sql(columns)
        sequence = self.session.execute(_ID_SEQUENCE).scalar_one()
        self.session.execute(text(sql.stage.format(
            sequence="'" + sequence.replace("'", "''") + "'")))
        values = {"user_id": int(context.actor.id or 0), "now": now, **_defaults(columns)}
        cursor = self.session.connection().connection.cursor()
        for batch in batches:
            cursor.copy_expert(sql.copy, io.BytesIO(batch), size=len(batch))
            self.session.execute(sql.insert_tasks, values)
        head = self.events.lock(bulk=True)  # lock order everywhere: task_manager, then seqs
        count = int(self.session.execute(sql.insert_events, {  # type: ignore[attr-defined]
            **values, "head": head, "epoch_ms": unix_millis(now),
            "metadata": json.dumps(event_metadata(context)),
        }).rowcount or 0)
        self.events.appended_in_bulk(count)
        return count
