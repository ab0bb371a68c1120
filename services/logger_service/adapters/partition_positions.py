"""How far a partitioned log is applied, as one global seq (for `min_seq` reads).

Each partition's checkpoint counts that partition's positions, and a partition may be idle
while the others move on, so its checkpoint alone cannot say that a global seq is covered.
Partition p covers global seq s when every event of p up to s is applied. Two facts show it:
the global seq of the entry at p's checkpoint (read from the stream), and the relay's mark
on p, `<pseq>:<seq>` ("the stream holds all of p up to global seq `seq`, the last at
`pseq`"): once the checkpoint has reached `pseq`, p covers `seq`. The checkpoints are read
before the marks, and positions are a function of the log, so a mark that is newer, older
or written by another relay never overstates. The log is applied up to the lowest of the
partitions' covered seqs.

Marks and positions of a log written with another partition count (a relay started with
another `STREAM_PARTITIONS`) say nothing of this one: when a stream's recorded count differs,
the position is 0 (a `min_seq` read answers 503, never early) and the error is logged.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.engine import Engine

from services.logger_service.adapters.projection_store import checkpoints
from shared.redis_client import pipelined
from shared.stream.entries import PAYLOAD_FIELD, entry_id_of, log_seq
from shared.stream.partitions import (
    PartitionCountMismatch,
    Partitioning,
    check_counts,
    count_key,
    decode_mark,
    mark_key,
)

log = logging.getLogger("taskstream.logger")


class PartitionedPosition:
    """The global seq a partitioned log's projection has applied through (callable)."""

    def __init__(self, engine: Engine, client: redis.Redis, partitioning: Partitioning,
                 streams: list[str], name: str) -> None:
        self.engine = engine
        self.client = client
        self.streams = streams
        self.count = partitioning.count
        self.names = [partitioning.checkpoint_name(name, p) for p in range(len(streams))]

    def __call__(self) -> int:
        with self.engine.connect() as connection:
            found = dict(connection.execute(select(checkpoints.c.name, checkpoints.c.last_seq)
                                            .where(checkpoints.c.name.in_(self.names))).all())
        applied = [int(found.get(name, 0)) for name in self.names]
        commands: list[tuple[str | int, ...]] = []
        for stream, checkpoint in zip(self.streams, applied, strict=True):
            at = entry_id_of(checkpoint)
            commands += [("GET", mark_key(stream)), ("XRANGE", stream, at, at, "COUNT", 1)]
        commands += [("GET", count_key(stream)) for stream in self.streams]
        replies = pipelined(self.client, commands)  # one plain pipeline per node on a cluster
        if failed := [reply for reply in replies if isinstance(reply, Exception)]:
            raise failed[0]
        try:
            check_counts(self.streams, replies[2 * len(self.streams):], self.count)
        except PartitionCountMismatch as exc:
            log.error("min_seq reads wait: %s", exc)
            return 0
        covered = []
        for n, checkpoint in enumerate(applied):
            marked_pseq, marked_seq = decode_mark(replies[2 * n])
            seq = _seq_of_entry(replies[2 * n + 1])
            covered.append(max(seq, marked_seq) if checkpoint >= marked_pseq else seq)
        return min(covered)


def _seq_of_entry(entries: Any) -> int:
    """The global seq inside the first of XRANGE's entries (0 when there is none)."""
    for _entry_id, fields in entries or []:
        payload = fields.get(PAYLOAD_FIELD.encode(), fields.get(PAYLOAD_FIELD))
        if payload:
            return log_seq(payload)
    return 0
