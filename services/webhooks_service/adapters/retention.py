"""How long the outbox keeps a finished delivery: deliveries delivered or given up longer ago
than the retention are deleted, a batch at a time, with the events no delivery needs any more.

Nothing pending is touched. Rows someone holds are skipped (`SKIP LOCKED`), not waited for: a
resend that holds a given-up delivery keeps it, and an event that queueing has just stored
again for a replay (its `INSERT … ON CONFLICT DO UPDATE` locks the row) keeps its event,
so a replay never finds the event it is queueing gone under it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.engine import Engine

PRUNE = text("""
WITH old AS (
    SELECT id, seq FROM deliveries
    WHERE status <> 'pending'
      AND coalesce(delivered_at, last_attempt_at, created_at) < now() - :keep
    ORDER BY id LIMIT :limit
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM deliveries AS d USING old WHERE d.id = old.id RETURNING d.id
), unused AS (
    SELECT e.seq FROM webhook_events AS e
    WHERE e.seq IN (SELECT seq FROM old)
      AND NOT EXISTS (SELECT 1 FROM deliveries AS x
                      WHERE x.seq = e.seq AND x.id NOT IN (SELECT id FROM old))
    FOR UPDATE SKIP LOCKED
), events_gone AS (
    DELETE FROM webhook_events AS e USING unused WHERE e.seq = unused.seq RETURNING e.seq
)
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM events_gone)
""")


def prune_outbox(engine: Engine, keep: dt.timedelta, limit: int) -> tuple[int, int]:
    """Delete up to `limit` deliveries finished more than `keep` ago, and the events left
    without a delivery; return how many of each went."""
    with engine.begin() as connection:
        deliveries, events = connection.execute(PRUNE, {"keep": keep, "limit": limit}).one()
    return int(deliveries), int(events)
