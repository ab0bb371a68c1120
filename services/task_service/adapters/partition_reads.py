"""The event log read by partition (`shared.stream.partitions`): events with the task id that
routes them, and a partition's positions (`pseq`) derived from the global order.

A partition's position of an event is how many events of that partition have a seq at or
below it; it is never stored, so these reads derive it with a window over the partition's
events in seq order. The relay needs that only to put back events a consumer lacks (rare);
its publishing follows the log by seq and counts on from each stream's last entry.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.task_service.adapters.stored_events import ENVELOPE_JSON
from shared.stream.entries import Encoded
from shared.stream.partitions import Partitioning

Routed = tuple[int, int | None, str]  # seq, task id (None: every partition), envelope JSON

_IN_PARTITION = "(task_id IS NULL OR mod(task_id, :count) = :partition)"

_ROUTED_AFTER = text(
    f"SELECT seq, task_id, {ENVELOPE_JSON} FROM events WHERE seq > :after "
    "ORDER BY seq LIMIT :limit")

_POSITIONED = (f"SELECT seq, row_number() OVER (ORDER BY seq) AS pseq FROM events "
               f"WHERE seq IS NOT NULL AND {_IN_PARTITION}")

_RANGE = text(f"""SELECT positioned.pseq, {ENVELOPE_JSON}
FROM ({_POSITIONED}) AS positioned JOIN events USING (seq)
WHERE positioned.pseq BETWEEN :first AND :last ORDER BY positioned.pseq""")

_SEQ_AT = text(f"SELECT seq FROM ({_POSITIONED}) AS positioned WHERE pseq = :pseq")

_COUNTS = text("""SELECT p, (SELECT count(*) FROM events
    WHERE seq <= :through AND (task_id IS NULL OR mod(task_id, :count) = p))
FROM generate_series(0, :count - 1) AS p ORDER BY p""")


class PartitionReads:
    """Read-only reads of the log by partition, each on a pooled connection of its own."""

    def __init__(self, engine: Engine, partitioning: Partitioning) -> None:
        self.engine = engine
        self.partitioning = partitioning

    def routed_after(self, after: int, limit: int) -> list[Routed]:
        """Up to `limit` events with `seq > after`, oldest first, with their task ids."""
        with self.engine.connect() as connection:
            rows = connection.execute(_ROUTED_AFTER, {"after": after, "limit": limit}).all()
        return [(int(seq), None if task is None else int(task), payload)
                for seq, task, payload in rows]

    def positions(self, partition: int, first: int, last: int) -> list[Encoded]:
        """The events of `partition` at positions `first..last`, as `(pseq, envelope JSON)`."""
        with self.engine.connect() as connection:
            rows = connection.execute(_RANGE, self._of(partition, first=first, last=last)).all()
        return [(int(pseq), payload) for pseq, payload in rows]

    def seq_at(self, partition: int, pseq: int) -> int:
        """The global seq of the event at position `pseq` of `partition` (0 for position 0)."""
        if pseq <= 0 or not self.partitioning.partitioned:
            return max(pseq, 0)
        with self.engine.connect() as connection:
            found = connection.execute(_SEQ_AT, self._of(partition, pseq=pseq)).scalar()
        if found is None:
            raise LookupError(f"{self.partitioning.label(partition)} has no position {pseq}")
        return int(found)

    def counts(self, through: int) -> list[int]:
        """How many events each partition has with a seq up to `through` (its position there)."""
        if not self.partitioning.partitioned:
            return [through]  # seqs are 1..head without a gap
        with self.engine.connect() as connection:
            rows = connection.execute(_COUNTS, {"through": through,
                                                "count": self.partitioning.count}).all()
        return [int(count) for _, count in rows]

    def _of(self, partition: int, **values: int) -> dict[str, int]:
        return {"count": self.partitioning.count, "partition": partition, **values}
