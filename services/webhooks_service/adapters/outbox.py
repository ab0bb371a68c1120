"""The outbox's SQL: queueing events for subscriptions, leasing due deliveries, recording
answers, replays, and the figures the metrics show. One instance is one transaction."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from services.webhooks_service.adapters.orm import Checkpoint, Replay
from services.webhooks_service.service_layer.attempts import Attempt, Outcome
from services.webhooks_service.service_layer.views import ReplayView
from shared.db import advance_checkpoint, lock_checkpoint

checkpoints = cast(Table, Checkpoint.__table__)
replays = cast(Table, Replay.__table__)

# The events of a batch (their JSON exactly as the stream carried it: `json`, not `jsonb`,
# keeps the text) that some subscription wants: every subscription made before the event, or
# only the one a replay is for.
WANTED = """
    WITH batch AS (
        SELECT CAST(e->>'seq' AS bigint) AS seq, e->>'event_id' AS event_id,
               e->>'type' AS type, CAST(e->>'task_id' AS bigint) AS task_id,
               CAST(e->>'occurred_at' AS timestamptz) AS occurred_at, CAST(e AS text) AS payload
        FROM json_array_elements(CAST(:events AS json)) AS e
    ), wanted AS (
        SELECT batch.*, s.id AS subscription_id
        FROM batch JOIN subscriptions AS s
          ON (s.event_types IS NULL OR batch.type = ANY(s.event_types))
         AND CASE WHEN CAST(:replay_for AS bigint) IS NULL THEN batch.seq > s.start_seq
                  ELSE s.id = CAST(:replay_for AS bigint) END
    )
"""
# An event already stored (a replay's, or a batch delivered again) is locked, not skipped:
# retention (adapters.retention) then leaves it to the deliveries about to be queued.
STORE_EVENTS = text(WANTED + """
    INSERT INTO webhook_events (seq, event_id, type, task_id, occurred_at, payload)
    SELECT DISTINCT ON (seq) seq, event_id, type, task_id, occurred_at, payload FROM wanted
    ORDER BY seq
    ON CONFLICT (seq) DO UPDATE SET payload = webhook_events.payload
""")
# Whether the fan-out has anyone to queue for. Run after the checkpoint is locked: a
# subscription made meanwhile waits for that lock (`SqlSubscriptions.checkpoint`) and starts
# after this batch, so a batch that sees none can queue nothing, and its events are stored
# for no one (parsing them and joining them with no subscription is most of the fan-out's
# work when there is none).
ANY_SUBSCRIPTION = text("SELECT EXISTS (SELECT FROM subscriptions)")
# One delivery per event and subscription, numbered in seq order (a queue sends by id), and
# each queue's count of pending deliveries raised (its row locked, so a sender that is
# emptying it at the same moment cannot delete it under us).
QUEUE_DELIVERIES = text(WANTED + """
    , queued AS (
        INSERT INTO deliveries (subscription_id, seq, task_key)
        SELECT subscription_id, seq, coalesce(task_id, 0) FROM wanted
        ORDER BY seq, subscription_id
        RETURNING subscription_id, task_key
    )
    , queues AS (
        INSERT INTO delivery_queues (subscription_id, task_key, pending, next_attempt_at)
        SELECT subscription_id, task_key, count(*), now() FROM queued
        GROUP BY subscription_id, task_key ORDER BY subscription_id, task_key
        ON CONFLICT (subscription_id, task_key)
        DO UPDATE SET pending = delivery_queues.pending + excluded.pending
    )
    SELECT count(*) FROM queued
""")

# Lease the queues that are due (of subscriptions not paused) and take the head of each: its
# oldest pending delivery, with the event and the secrets that sign it now.
CLAIM = text("""
    WITH due AS (
        SELECT q.subscription_id, q.task_key
        FROM delivery_queues AS q JOIN subscriptions AS s ON s.id = q.subscription_id
        WHERE q.next_attempt_at <= now() AND NOT s.paused
        ORDER BY q.next_attempt_at
        LIMIT :limit
        FOR UPDATE OF q SKIP LOCKED
    ), leased AS (
        UPDATE delivery_queues AS q
        SET lease = gen_random_uuid(),
            next_attempt_at = now() + make_interval(secs => :lease_seconds)
        FROM due WHERE q.subscription_id = due.subscription_id AND q.task_key = due.task_key
        RETURNING q.subscription_id, q.task_key, q.lease
    )
    SELECT d.id AS delivery_id, d.subscription_id, d.task_key, CAST(l.lease AS text) AS lease,
           d.attempts, d.first_attempt_at, now() AS claimed_at, e.seq, e.event_id,
           e.occurred_at, e.payload, s.url, s.secret, s.previous_secret,
           s.previous_secret_expires_at > now() AS previous_signs
    FROM leased AS l
    CROSS JOIN LATERAL (
        SELECT * FROM deliveries AS d
        WHERE d.subscription_id = l.subscription_id AND d.task_key = l.task_key
          AND d.status = 'pending'
        ORDER BY d.id LIMIT 1
    ) AS d
    JOIN webhook_events AS e ON e.seq = d.seq
    JOIN subscriptions AS s ON s.id = d.subscription_id
""")

# Record answers, each only if its queue is still leased to us (a lease that ran out may have
# been taken over: then the other sender's answer counts). A finished delivery leaves its
# queue, whose next delivery is due at once; a failed one waits `retry_in` seconds.
RECORD = text("""
    WITH answer AS (
        SELECT * FROM jsonb_to_recordset(CAST(:outcomes AS jsonb)) AS a(
            delivery_id bigint, subscription_id bigint, task_key bigint, lease uuid,
            status text, status_code integer, error text, retry_in double precision,
            finished boolean)
    ), freed AS (
        UPDATE delivery_queues AS q
        SET lease = NULL,
            pending = q.pending - CASE WHEN a.finished THEN 1 ELSE 0 END,
            next_attempt_at = now() + make_interval(secs => a.retry_in)
        FROM answer AS a
        WHERE q.subscription_id = a.subscription_id AND q.task_key = a.task_key
          AND q.lease = a.lease
        RETURNING a.delivery_id
    )
    UPDATE deliveries AS d
    SET status = a.status, attempts = d.attempts + 1, last_status_code = a.status_code,
        last_error = a.error, last_attempt_at = now(),
        first_attempt_at = coalesce(d.first_attempt_at, now()),
        delivered_at = CASE WHEN a.status = 'delivered' THEN now() END
    FROM answer AS a JOIN freed USING (delivery_id)
    WHERE d.id = a.delivery_id
""")
DROP_EMPTY_QUEUES = text("""
    DELETE FROM delivery_queues
    WHERE pending <= 0 AND (subscription_id, task_key) IN (
        SELECT s, t FROM unnest(CAST(:subscriptions AS bigint[]), CAST(:tasks AS bigint[]))
                         AS k(s, t))
""")
PAUSE = text("""
    UPDATE subscriptions SET paused = true, paused_reason = :reason, updated_at = now()
    WHERE id = :subscription_id
""")
FIGURES = text("""
    SELECT count(*) AS pending, count(*) FILTER (WHERE d.attempts > 0) AS retrying,
           extract(epoch FROM now() - min(e.occurred_at)) AS oldest_seconds
    FROM deliveries AS d JOIN webhook_events AS e ON e.seq = d.seq
    WHERE d.status = 'pending'
""")


@dataclass(frozen=True)
class OutboxFigures:
    """How much waits in the outbox: pending deliveries, those being retried, the oldest."""

    pending: int
    retrying: int
    oldest_seconds: float


class SqlOutbox:
    """The outbox, inside one open transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    # -- queueing (the consumer and replays) ---------------------------------------------

    def lock_checkpoint(self, name: str) -> int:
        """Return the checkpoint, row-locked until the transaction ends."""
        return lock_checkpoint(self.connection, checkpoints, name)

    def advance_checkpoint(self, name: str, seq: int) -> None:
        """Store the new checkpoint; it commits with the queued deliveries."""
        advance_checkpoint(self.connection, checkpoints, name, seq)

    def start_at(self, name: str, seq: int) -> bool:
        """Set a checkpoint that does not exist yet; True if this made it."""
        made = self.connection.execute(
            pg_insert(checkpoints).values(name=name, last_seq=seq).on_conflict_do_nothing())
        return made.rowcount > 0

    def queue(self, payloads: list[str], replay_for: int | None = None) -> int:
        """Queue events (JSON envelopes) for the subscriptions that want them (or for the
        one a replay is for); return how many deliveries were queued."""
        if replay_for is None and not self.connection.execute(ANY_SUBSCRIPTION).scalar():
            return 0
        params = {"events": f"[{','.join(payloads)}]", "replay_for": replay_for}
        self.connection.execute(STORE_EVENTS, params)
        return int(self.connection.execute(QUEUE_DELIVERIES, params).scalar_one())

    # -- sending ---------------------------------------------------------------------------

    def claim(self, limit: int, lease_seconds: float) -> list[Attempt]:
        """Lease up to `limit` due queues; return the head delivery of each."""
        rows = self.connection.execute(
            CLAIM, {"limit": limit, "lease_seconds": lease_seconds}).mappings()
        return [_attempt(row) for row in rows]

    def record(self, outcomes: Sequence[Outcome]) -> None:
        """Record answers, free their queues (dropping empty ones), pause given-up ones."""
        self.connection.execute(RECORD, {"outcomes": json.dumps([_row(o) for o in outcomes])})
        finished = [o.attempt for o in outcomes if o.finished]
        if finished:
            self.connection.execute(DROP_EMPTY_QUEUES, {
                "subscriptions": [a.subscription_id for a in finished],
                "tasks": [a.task_key for a in finished]})
        for outcome in outcomes:
            if outcome.pause_reason:
                self.connection.execute(PAUSE, {"reason": outcome.pause_reason,
                                                "subscription_id": outcome.attempt.subscription_id})

    def figures(self) -> OutboxFigures:
        """Pending deliveries, those failed at least once, and the age of the oldest event."""
        row = self.connection.execute(FIGURES).one()
        return OutboxFigures(int(row.pending), int(row.retrying), float(row.oldest_seconds or 0))

    # -- replays ---------------------------------------------------------------------------

    def open_replays(self) -> list[ReplayView]:
        """Replays not finished yet, oldest first."""
        rows = self.connection.execute(
            select(*replays.c).where(replays.c.finished_at.is_(None)).order_by(replays.c.id))
        return [ReplayView(**row) for row in rows.mappings()]

    def lock_replay(self, replay_id: int) -> ReplayView | None:
        """A replay, row-locked (None when it is finished or gone)."""
        row = self.connection.execute(
            select(*replays.c).where(replays.c.id == replay_id,
                                     replays.c.finished_at.is_(None))
            .with_for_update(skip_locked=True)).mappings().first()
        return None if row is None else ReplayView(**row)

    def advance_replay(self, replay: ReplayView, seq: int) -> None:
        """Events of the replay up to `seq` are queued; finished when that is the last."""
        finished = func.now() if seq >= replay.through_seq else None
        self.connection.execute(update(replays).where(replays.c.id == replay.id)
                                .values(next_seq=seq, finished_at=finished))


def _attempt(row: Any) -> Attempt:
    """The Attempt a claimed row describes."""
    secrets = (row.secret, row.previous_secret) if row.previous_signs else (row.secret,)
    return Attempt(
        delivery_id=row.delivery_id, subscription_id=row.subscription_id,
        task_key=row.task_key, lease=row.lease, attempts=row.attempts,
        first_attempt_at=row.first_attempt_at, claimed_at=row.claimed_at, seq=row.seq,
        event_id=row.event_id, occurred_at=row.occurred_at, payload=row.payload, url=row.url,
        secrets=secrets)


def _row(outcome: Outcome) -> dict[str, Any]:
    """One outcome as RECORD reads it."""
    attempt, answer = outcome.attempt, outcome.answer
    return {"delivery_id": attempt.delivery_id, "subscription_id": attempt.subscription_id,
            "task_key": attempt.task_key, "lease": attempt.lease, "status": outcome.status,
            "status_code": answer.status, "error": (answer.problem() or "")[:2000] or None,
            "retry_in": outcome.retry_in, "finished": outcome.finished}


def outbox_transaction(engine: Engine, flushed: bool = True
                       ) -> Callable[[], AbstractContextManager[SqlOutbox]]:
    """A unit-of-work factory: each call opens one transaction, committed on a clean exit.

    With `flushed=False` the commit does not wait for the WAL to reach the disk
    (`synchronous_commit = off`): for the senders' leases and answers only, where what a
    server crash could take back is a lease (it runs out) or an answer (the delivery is sent
    again, with the same `webhook-id`), both of which at-least-once already allows. Queueing
    events is always flushed: its checkpoint lets the stream entries be acknowledged.
    """

    @contextmanager
    def transaction() -> Iterator[SqlOutbox]:
        with engine.begin() as connection:
            if not flushed:
                connection.execute(text("SET LOCAL synchronous_commit = off"))
            yield SqlOutbox(connection)

    return transaction


def read_checkpoint(engine: Engine, name: str) -> int:
    """The checkpoint (0 before the first event)."""
    with engine.connect() as connection:
        found = connection.execute(
            select(checkpoints.c.last_seq).where(checkpoints.c.name == name)).scalar()
    return int(found or 0)


def outbox_figures(engine: Engine) -> OutboxFigures:
    """The outbox's figures, read in a transaction of their own."""
    with engine.connect() as connection:
        return SqlOutbox(connection).figures()

