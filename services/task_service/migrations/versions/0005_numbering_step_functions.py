"""The numbering step as server functions: one call, its statements planned once a session.

A command whose event was committed unnumbered runs a step right after its commit: try the
sequencing lock and number what is pending, else wait for the step holding it (shared) and
read its event's seq, unless a bulk writer holds the numbering. Sent as four statements,
the server parsed, analysed and planned three of them on every call, and set up the whole
numbering statement even when it only read one seq; with 16 writers on two cores that was
a tenth of the server's work per command. `taskstream_step` does it in one call, and
`taskstream_number_events` is the numbering itself, the one place it is written
(`adapters/event_store.py` calls both; its module docstring says how the numbering works).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-12
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Numbers the oldest committed unnumbered events `head + 1, …` (through the partial index on
# `id WHERE seq IS NULL`) and wakes the relay. Its caller holds the sequencing lock, taken
# by an earlier statement, so this one's snapshot sees every commit before the lock. Answers
# how many it numbered, the seq of the event `p_mine` (NULL while it has none), the head
# after the step, whether it woke the relay, and, as `taskstream_step` does, that it
# numbered and found no bulk writer.
NUMBER_EVENTS = """
CREATE FUNCTION taskstream_number_events(p_mine bigint, p_limit int, p_channel text)
RETURNS TABLE (numbered bigint, seq_of_mine bigint, head bigint, woken bigint,
               numbering boolean, bulk boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH head AS (SELECT coalesce(max(seq), 0) AS seq FROM events),
    due AS (SELECT id, row_number() OVER (ORDER BY id) AS rank FROM (
        SELECT id FROM events WHERE seq IS NULL ORDER BY id LIMIT p_limit) AS oldest),
    numbered AS (UPDATE events SET seq = head.seq + due.rank FROM due, head
                 WHERE events.id = due.id RETURNING events.id, events.seq),
    woken AS (SELECT pg_notify(p_channel, max(seq)::text) FROM numbered
              HAVING count(*) > 0)
    SELECT (SELECT count(*) FROM numbered),
           coalesce((SELECT seq FROM numbered WHERE id = p_mine),
                    (SELECT seq FROM events WHERE id = p_mine)),
           coalesce((SELECT max(seq) FROM numbered), (SELECT seq FROM head)),
           (SELECT count(*) FROM woken), true, false;
END
$$"""

# A step that never waits for the lock: tries it, numbers when it holds it (the lock then
# held until commit, `synchronous_commit` on; the transaction-local setting
# `taskstream.numbering` tells a create's statement after it, `task_creation`); else, with
# `p_wait_for_step`, waits for the step that holds it with a shared lock (every waiter wakes
# at once) and reads the seq of `p_mine`, unless a bulk writer holds the numbering or waits
# for it (a shared try of the bulk lock fails then, even while it only waits): then it
# answers at once (`bulk`). Each statement of a volatile function takes a fresh snapshot,
# so what follows a lock sees every commit before it.
STEP = """
CREATE FUNCTION taskstream_step(p_mine bigint, p_limit int, p_channel text, p_key bigint,
                                p_bulk_key bigint, p_wait_for_step boolean)
RETURNS TABLE (numbered bigint, seq_of_mine bigint, head bigint, woken bigint,
               numbering boolean, bulk boolean)
LANGUAGE plpgsql AS $$
DECLARE
    locked boolean := pg_try_advisory_xact_lock(p_key);
    held_by_bulk boolean := false;
BEGIN
    PERFORM set_config('taskstream.numbering', locked::text, true),
            set_config('synchronous_commit', 'on', true);
    IF locked THEN
        RETURN QUERY SELECT * FROM taskstream_number_events(p_mine, p_limit, p_channel);
        RETURN;
    END IF;
    IF p_wait_for_step THEN
        held_by_bulk := NOT pg_try_advisory_xact_lock_shared(p_bulk_key);
        IF NOT held_by_bulk THEN
            PERFORM pg_advisory_xact_lock_shared(p_key);
        END IF;
    END IF;
    RETURN QUERY SELECT 0::bigint, (SELECT e.seq FROM events AS e WHERE e.id = p_mine),
                        0::bigint, 0::bigint, false, held_by_bulk;
END
$$"""


def upgrade() -> None:
    """Create the numbering functions."""
    op.execute(NUMBER_EVENTS)
    op.execute(STEP)


def downgrade() -> None:
    """Drop them (the services of the revision before send the statements themselves)."""
    op.execute("DROP FUNCTION taskstream_step(bigint, int, text, bigint, bigint, boolean)")
    op.execute("DROP FUNCTION taskstream_number_events(bigint, int, text)")
