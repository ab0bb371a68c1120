"""The event store on PostgreSQL: appends that commit concurrently, numbered by short steps.

A command inserts its events with an internal `id` (an identity) and, right before its
commit, tries the sequencing lock (never waiting): free, it runs a numbering step inside its
own transaction (`EventStore.number_before_commit`, `task_creation`) and commits once;
taken, it commits its events without a `seq`, without waiting for anyone, so contended
commands share disk flushes (group commit), and a step after its commit numbers them. A
step (`sequencer.Sequencer.step`), under a transaction-scoped advisory lock, numbers the
committed unnumbered events, and inside a command its own, `head + 1, …` in `id` order, a
bounded chunk at a time, with `synchronous_commit` on. Steps never overlap and number only
committed events or their own transaction's, so the seqs anyone can see are always exactly
`1..head`, and a rolled-back command leaves no hole: its events never existed. Per-task
order holds because a later change of a task locks the task's row, which its earlier change
held until commit, so its events' ids are larger and they become visible later. The relay
tries a step before it reads; a command whose events are still unnumbered runs one right
after its commit to learn its own position ("helping along": one step numbers everything
committed so far, so one transaction serves many commands).

A writer that must know its seqs inside its own transaction (the CSV import, the daily
transfer's check-and-append, the state rebuild) takes the lock with `EventStore.lock()`,
which first numbers what is pending, and appends with seqs given at once; the lock is held
until its commit, so nothing is numbered in between. The import and the rebuild, whose
transactions are long, take the bulk lock first (`lock(bulk=True)`): a command that finds it
taken answers without its position rather than wait for their commit (`sequencer`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg2
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from services.task_service.adapters.orm import SCHEDULED_TRANSFER
from services.task_service.adapters.prepared import Prepared, prepare
from services.task_service.domain.model import Context, NewEvent, TaskEvent
from shared.events import SCHEMA_VERSION, unix_millis

APPEND_LOCK_KEY = 7_213_400_101  # pg_advisory_xact_lock key: who may give out seqs
# Held (exclusive) besides the sequencing lock, and taken first, by a writer that keeps the
# sequencing lock for a long transaction (an import, a rebuild): commands then do not wait.
BULK_LOCK_KEY = 7_213_400_102
NOTIFY_CHANNEL = "taskstream_events"
SEQUENCE_CHUNK = 5_000  # events numbered per sequencing transaction
ID_SEQUENCE = "events_id_seq"

_TASK_EVENTS = text(
    "SELECT type, task_id, version, data, occurred_at FROM events "
    "WHERE task_id IS NOT NULL ORDER BY seq"
)
# Answered from the partial unique index over scheduled transfers (the same predicate).
LAST_SCHEDULED = text(f"SELECT max(data->>'date') FROM events WHERE {SCHEDULED_TRANSFER}")
# The sequencing lock, waited for and held until commit, whose commit is then always flushed.
_LOCK = ("SELECT pg_advisory_xact_lock(%(key)s), set_config('synchronous_commit', 'on', "
         "true)")
# One numbering step, under the lock taken by a statement before it (the server function of
# migration 0005, where it is written): the next seqs to the oldest committed unnumbered
# events; wakes the relay; answers how many it numbered, the seq of the event `mine`, the
# head after the step, whether it woke the relay, and (as `STEP` does) that it numbered and
# found no bulk writer (`sequencer`).
_NUMBER = "SELECT * FROM taskstream_number_events(%(mine)s, %(limit)s, %(channel)s)"


@contextmanager
def round_trip(connection: Any) -> Iterator[Any]:
    """A cursor of a DBAPI connection outside any transaction, in autocommit mode for
    `execute_raw` (the statements sent together are one transaction); the connection is back
    in its usual mode afterwards, unless it broke (setting a mode would then raise)."""
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            yield cursor
    finally:
        if not connection.closed:
            connection.autocommit = False


def execute_raw(cursor: Any, statements: str, parameters: dict[str, Any]) -> None:
    """Send several statements at once on a DBAPI cursor; a failure comes back as SQLAlchemy's
    error of its kind, marked invalidated when the connection is lost (`shared.outages`: a
    503 at the edge), and a transaction the statements opened is rolled back."""
    try:
        cursor.execute(statements, parameters)
    except psycopg2.Error as exc:
        if not cursor.connection.closed:
            with suppress(psycopg2.Error):  # lost meanwhile: the server rolled it back
                cursor.execute("ROLLBACK")
        raise DBAPIError.instance(statements, parameters, exc, psycopg2.Error,
                                  connection_invalidated=bool(cursor.connection.closed)
                                  ) from exc


NUMBERING = Prepared("taskstream_number", {"mine": "bigint", "limit": "int", "channel": "text"},
                     _NUMBER)
# A step in one call that never waits for the lock: tries it and numbers when it holds it;
# else, told to `wait_for_step`, waits for the step holding it and reads the seq of `mine`,
# unless a bulk writer holds the numbering (the server function of migration 0005).
STEP = Prepared("taskstream_step", {
    "mine": "bigint", "limit": "int", "channel": "text", "key": "bigint", "bulk": "bigint",
    "wait_for_step": "boolean"},
    "SELECT * FROM taskstream_step(%(mine)s, %(limit)s, %(channel)s, %(key)s, %(bulk)s, "
    "%(wait_for_step)s)")


def numbering_sql(wait: bool) -> str:
    """A numbering step's statements: the lock (waited for, or only tried), then numbering
    (when the lock is held) and its answer row, `mine` being the event asked about. They
    execute `NUMBERING` or `STEP`: `prepare` them on the connection first (`run_step`)."""
    return f"{_LOCK}; {NUMBERING.call()}" if wait else STEP.call()


def numbering_parameters(chunk: int = SEQUENCE_CHUNK, mine: int = 0,
                         wait_for_step: bool = False) -> dict[str, Any]:
    """The parameters of `numbering_sql`'s statements (`wait_for_step`: of `STEP` when it
    is to wait for a step it finds running)."""
    return {"key": APPEND_LOCK_KEY, "bulk": BULK_LOCK_KEY, "limit": chunk, "mine": mine,
            "channel": NOTIFY_CHANNEL, "wait_for_step": wait_for_step}


def run_step(pooled: Any, cursor: Any, statements: str, parameters: dict[str, Any],
             *also: Prepared) -> Any:
    """Send `statements` (which execute `NUMBERING` or `STEP`, and `also`) on `cursor`, a
    cursor of the pooled connection `pooled`, preparing them there first if need be; the
    answer's row."""
    prepare(pooled.info, cursor, NUMBERING, STEP, *also)
    execute_raw(cursor, statements, parameters)
    return cursor.fetchone()


def event_id_sql(counter: str) -> str:
    """SQL for `shared.events.new_event_id(counter, :epoch_ms)`: a UUIDv7 whose 48-bit counter
    is the event's internal id, so ids ascend and a bulk insert appends to the end of the
    `event_id` index (a test pins this to the Python function)."""
    return f"""CAST(
       lpad(to_hex(CAST(:epoch_ms AS bigint)), 12, '0') || '7'
       || lpad(to_hex(({counter} >> 36) & 4095), 3, '0')
       || to_hex(8 | (({counter} >> 34) & 3))
       || lpad(to_hex({counter} & 17179869183), 9, '0')
       || lpad(to_hex(CAST(floor(random() * 16777216) AS int)), 6, '0') AS uuid)"""


_INSERT_EVENTS = text(f"""INSERT INTO events (id, seq, event_id, task_id, version, type, data,
    metadata, occurred_at)
SELECT row_id, new.seq, {event_id_sql("row_id")}, task_id, version, type, data,
       CAST(:metadata AS jsonb), :now
FROM (SELECT nextval('{ID_SEQUENCE}') AS row_id, given.* FROM jsonb_to_recordset(
    CAST(:rows AS jsonb)) AS given(seq bigint, task_id bigint, version int, type text,
    data jsonb)) AS new
RETURNING id, seq, event_id""")


def event_metadata(context: Context) -> dict[str, Any]:
    """The metadata stored with every event: actor, correlation id, schema version."""
    return {
        "actor": dict(vars(context.actor)), "correlation_id": context.correlation_id,
        "schema_version": SCHEMA_VERSION,
    }


@dataclass(frozen=True)
class Written:
    """Where a transaction's last event is: its seq when it was given at once, else its
    internal id (numbered after the commit); neither when it wrote no event."""

    seq: int | None = None
    row_id: int | None = None


def lock_appends(session: Session | Connection, bulk: bool = False) -> int:
    """Take the sequencing lock until commit (after the bulk lock when `bulk`), number every
    committed event that waits for a seq, and return the head: the next seqs are this
    transaction's to give."""
    cursor = session.connection().connection.cursor() if isinstance(session, Session) \
        else session.connection.cursor()
    if bulk:
        cursor.execute("SELECT pg_advisory_xact_lock(%(key)s)", {"key": BULK_LOCK_KEY})
    cursor.execute(_LOCK, {"key": APPEND_LOCK_KEY})
    while True:
        cursor.execute(_NUMBER, {"limit": SEQUENCE_CHUNK, "mine": 0, "channel": NOTIFY_CHANNEL})
        numbered, _, head, *_ = cursor.fetchone() or (0, None, 0)
        if numbered < SEQUENCE_CHUNK:
            return int(head)


def notify(session: Session | Connection, head: int) -> None:
    """Wake the relay when this transaction commits (only writers holding the lock do: a
    notifying commit takes a database-wide lock, which would queue concurrent commits)."""
    session.execute(text("SELECT pg_notify(:channel, :head)"),
                    {"channel": NOTIFY_CHANNEL, "head": str(head)})


class EventStore:
    """Append events within a unit of work's session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.head: int | None = None  # set while this transaction holds the sequencing lock
        self.written = Written()

    def lock(self, bulk: bool = False) -> int:
        """Take the sequencing lock now (appends then get their seqs at once); the head.
        `bulk`: for a long transaction, during which commands answer without their seqs."""
        self.session.flush()
        if self.head is None:
            self.head = lock_appends(self.session, bulk)
        return self.head

    def append(self, events: Sequence[NewEvent], context: Context, now: datetime
               ) -> list[tuple[int | None, uuid.UUID]]:
        """Append events after any pending state change; their seqs (None until numbered,
        unless this transaction holds the lock) and event ids."""
        if not events:
            return []
        self.session.flush()  # the state change first (its row lock orders a task's events)
        head = self.head
        rows = [{"seq": None if head is None else head + n, "task_id": event.task_id,
                 "version": event.version, "type": event.type, "data": event.data}
                for n, event in enumerate(events, start=1)]
        stored = self.session.execute(_INSERT_EVENTS, {
            "rows": json.dumps(rows, default=str), "metadata": json.dumps(event_metadata(context)),
            "now": now, "epoch_ms": unix_millis(now)}).all()
        last_id = max(row_id for row_id, _, _ in stored)
        if head is None:
            self.written = Written(row_id=last_id)
        else:
            self.head = head + len(rows)
            self.written = Written(self.head)
            notify(self.session, self.head)
        return [(seq, event_id) for _, seq, event_id in stored]

    def number_before_commit(self) -> None:
        """Right before the commit: if no numbering step is running, number what is pending
        and this transaction's own events in this transaction, so that the command commits
        once instead of twice (its commit and a step's); if one is, leave them to the step
        after the commit. The lock, only tried, is then held through the commit."""
        if self.head is not None or self.written.row_id is None:
            return
        pooled = self.session.connection().connection
        found = run_step(pooled, pooled.cursor(), numbering_sql(wait=False),
                         numbering_parameters(mine=self.written.row_id))
        if found is not None and found[1] is not None:
            self.written = Written(int(found[1]), self.written.row_id)

    def appended_in_bulk(self, count: int) -> None:
        """Record `count` events inserted with seqs `head + 1 …` under the lock, and wake
        the relay when they commit."""
        assert self.head is not None, "bulk appends take the lock first"
        if count:
            self.head += count
            self.written = Written(self.head)
            notify(self.session, self.head)

    def task_events(self) -> Iterator[TaskEvent]:
        """Every event of a task, in seq order, streamed: what the task table is folded from
        (called under the lock, when every committed event has its seq)."""
        rows = self.session.execute(_TASK_EVENTS.execution_options(yield_per=10_000))
        for row in rows:
            yield tuple(row)  # type: ignore[misc]

    def last_scheduled_transfer(self) -> date | None:
        """The latest date the daily schedule has requested a transfer for, if any."""
        found = self.session.execute(LAST_SCHEDULED).scalar()
        return date.fromisoformat(found) if found else None
