"""The numbering steps: committed events get their seqs, each step its own short transaction
(how and why: `event_store`'s module docstring).

A command learns its position by helping along: right after its commit it runs a step, or
waits for the one in progress, and reads its event's seq. It never waits for a bulk writer
(an import, a rebuild) that holds the sequencing lock until its own commit, however long
that is: it answers without its position instead (`position` is None), and its event is
numbered when the bulk writer commits (by the relay's next pass, or the next command's step).
"""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

from services.task_service.adapters.event_store import (
    NUMBERING,
    SEQUENCE_CHUNK,
    Written,
    execute_raw,
    numbering_parameters,
    numbering_sql,
    round_trip,
)
from services.task_service.adapters.prepared import prepare

# Waits (shared, so every waiter wakes at once) for the step in progress, then looks again;
# unless a bulk writer holds the sequencing lock, or waits for it (a shared try of the bulk
# lock fails then, even while it only waits): then it answers at once, the last column true.
_AFTER_STEP = """SELECT set_config('taskstream.bulk', 'true', true)
    WHERE NOT pg_try_advisory_xact_lock_shared(%(bulk)s);
SELECT pg_advisory_xact_lock_shared(%(key)s)
    WHERE current_setting('taskstream.bulk', true) IS DISTINCT FROM 'true';
SELECT 0, (SELECT seq FROM events WHERE id = %(mine)s), 0, 0,
       coalesce(current_setting('taskstream.bulk', true) = 'true', false)"""


class Sequencer:
    """Numbers committed events, each step its own short transaction."""

    def __init__(self, engine: Engine, chunk: int = SEQUENCE_CHUNK) -> None:
        self.engine = engine
        self.chunk = chunk

    def step(self, mine: int = 0, connection: Connection | None = None, wait: bool = True
             ) -> tuple[int, int | None, int, bool]:
        """One numbering transaction: (events numbered, the seq of event `mine`, head (0 when
        it did not hold the lock), whether it held the lock). Without `wait` it numbers only
        if no other step is running. On `connection` (outside any transaction) when given,
        else on a pooled one."""
        return self._run(numbering_sql(wait), mine, connection)

    def after_step(self, mine: int, connection: Connection | None = None
                   ) -> tuple[int | None, bool]:
        """Wait for the step in progress to end, unless a bulk writer holds the numbering;
        then (the seq of event `mine` or None, whether a bulk writer holds it)."""
        _, seq, _, bulk = self._run(_AFTER_STEP, mine, connection)
        return seq, bulk

    def _run(self, statements: str, mine: int, connection: Connection | None
             ) -> tuple[int, int | None, int, bool]:
        if connection is not None:
            return self._execute(connection.connection, statements, mine)
        pooled = self.engine.raw_connection()
        try:
            return self._execute(pooled, statements, mine)
        except DBAPIError as exc:
            if exc.connection_invalidated:  # lost: not to be handed out again
                pooled.invalidate()
            raise
        finally:
            pooled.close()

    def _execute(self, pooled: PoolProxiedConnection, statements: str, mine: int
                 ) -> tuple[int, int | None, int, bool]:
        with round_trip(pooled.driver_connection) as cursor:
            prepare(pooled.info, cursor, NUMBERING)
            execute_raw(cursor, statements, numbering_parameters(self.chunk, mine))
            found = cursor.fetchone()
        numbered, seq, head, _, flag = found[:5] if found else (0, None, 0, 0, False)
        return int(numbered), None if seq is None else int(seq), int(head), bool(flag)

    def number_all(self, connection: Connection | None = None) -> int:
        """Number everything committed so far (waiting for any bulk writer); the head."""
        while True:
            numbered, _, head, _ = self.step(connection=connection)
            if numbered < self.chunk:
                return head

    def position(self, written: Written, connection: Connection | None = None) -> int | None:
        """The seq of a committed transaction's last event, numbering it if need be (the
        head, after numbering what is pending, when it wrote none); None, at once, while a
        bulk writer holds the numbering.

        A command that finds another step running does not queue for the lock behind every
        other command (each would then run a step of its own, one after another): it waits
        for that step with a shared lock, which wakes all waiters together, and most find
        their event numbered by it (flat combining)."""
        if written.seq is not None:
            return written.seq
        mine = written.row_id or 0
        while True:
            numbered, seq, head, locked = self.step(mine, connection, wait=False)
            if not mine and locked and numbered < self.chunk:
                return head
            if seq is None and not locked:
                seq, bulk = self.after_step(mine, connection)
                if seq is None and bulk:
                    return None
            if seq is not None:
                return seq
            if mine and locked and numbered == 0:
                raise LookupError(f"event {written.row_id} is not in the store")
