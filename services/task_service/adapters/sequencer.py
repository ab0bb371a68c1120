"""The numbering steps: committed events get their seqs, each step its own short transaction
(how and why: `event_store`'s module docstring).

A command whose events were not numbered in its own transaction (another step held the
lock: `EventStore.number_before_commit`, `task_creation`) learns its position by helping
along: right after its commit it runs a step, or waits for the one in progress, and reads
its event's seq. It never waits for a bulk writer
(an import, a rebuild) that holds the sequencing lock until its own commit, however long
that is: it answers without its position instead (`position` is None), and its event is
numbered when the bulk writer commits (by the relay's next pass, or the next command's step).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

from services.task_service.adapters.event_store import (
    SEQUENCE_CHUNK,
    Written,
    numbering_parameters,
    numbering_sql,
    round_trip,
    run_step,
)


class Sequencer:
    """Numbers committed events, each step its own short transaction."""

    def __init__(self, engine: Engine, chunk: int = SEQUENCE_CHUNK) -> None:
        self.engine = engine
        self.chunk = chunk

    def step(self, mine: int = 0, pooled: PoolProxiedConnection | None = None,
             wait: bool = True) -> tuple[int, int | None, int, bool, bool]:
        """One numbering transaction: (events numbered, the seq of event `mine`, head (0 when
        it did not hold the lock), whether it held the lock, whether it found a bulk writer
        (only asked without `wait`)). Without `wait` it numbers only if no other step is
        running, else waits for that one to end unless a bulk writer holds the numbering. On
        the checked-out connection `pooled` (outside any transaction) when given, else on one
        of its own."""
        return self._run(numbering_sql(wait), numbering_parameters(self.chunk, mine, not wait),
                         pooled)

    def _run(self, statements: str, parameters: dict[str, Any],
             pooled: PoolProxiedConnection | None) -> tuple[int, int | None, int, bool, bool]:
        if pooled is not None:
            return self._execute(pooled, statements, parameters)
        pooled = self.engine.raw_connection()
        try:
            return self._execute(pooled, statements, parameters)
        except DBAPIError as exc:
            if exc.connection_invalidated:  # lost: not to be handed out again
                pooled.invalidate()
            raise
        finally:
            pooled.close()

    def _execute(self, pooled: PoolProxiedConnection, statements: str,
                 parameters: dict[str, Any]) -> tuple[int, int | None, int, bool, bool]:
        with round_trip(pooled.driver_connection) as cursor:
            found = run_step(pooled, cursor, statements, parameters)
        numbered, seq, head, _, locked, bulk = found or (0, None, 0, 0, False, False)
        return int(numbered), None if seq is None else int(seq), int(head), bool(locked), \
            bool(bulk)

    def help_along(self) -> None:
        """Number what is pending unless a step (a command's, or a bulk writer's) is running:
        that one numbers it, or the next pass does. The relay's step before each pass, for
        events whose command died before numbering them; it never makes commands that try
        the lock meanwhile fall back to a second commit, nor waits for an import."""
        while True:
            numbered, _, _, locked, _ = self._run(
                numbering_sql(wait=False), numbering_parameters(self.chunk), None)
            if not locked or numbered < self.chunk:
                return

    def number_all(self, pooled: PoolProxiedConnection | None = None) -> int:
        """Number everything committed so far (waiting for any bulk writer); the head."""
        while True:
            numbered, _, head, *_ = self.step(pooled=pooled)
            if numbered < self.chunk:
                return head

    def position(self, written: Written, pooled: PoolProxiedConnection | None = None
                 ) -> int | None:
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
            numbered, seq, head, locked, bulk = self.step(mine, pooled, wait=False)
            if seq is not None:
                return seq
            if not mine and locked and numbered < self.chunk:
                return head
            if bulk:
                return None
            if mine and locked and numbered == 0:
                raise LookupError(f"event {written.row_id} is not in the store")
