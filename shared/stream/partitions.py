"""The event log split into partitions by task id (`STREAM_PARTITIONS`).

With one partition (the default) nothing changes: one stream, the checkpoint `logger`,
entry ids `<seq>-0`. With N > 1 a task's events go to partition `task_id mod N`, and an event
of no task (`DailyTransferRequested`) goes to every partition. Partition p's stream is
`<namespace>:events:{p}` (its hash tag `{p}` keeps its dead letters, backfill and relay mark
in one Redis Cluster slot); its entries have ids `<pseq>-0`, where `pseq` numbers the
partition's events `1, 2, …` in global `seq` order. The envelope inside keeps the global
`seq`. A partition's position is a pure function of the log (how many of its events have a
seq at or below), so whoever derives it again, after a crash or on another machine, gets the
same number: that is what makes it durable without being stored.

Those positions hold only for one count, so each partition stream has beside it, in its slot,
the count it was written with (`<stream>:partitions`). The first relay or projector to find
it missing records its own; any whose `STREAM_PARTITIONS` differs refuses to run
(`PartitionCountMismatch`) until `taskstream projections repartition` rewrites the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from shared.redis_client import pipelined

MARK_SUFFIX = ":published"  # "<pseq>:<seq>": the partition holds its events through global seq
COUNT_SUFFIX = ":partitions"  # the partition count the stream was written with


class PartitionCountMismatch(RuntimeError):
    """A partition stream was written with another partition count than the configured one."""

    def __init__(self, stream: str, stored: int, configured: int) -> None:
        super().__init__(
            f"{stream} was written with {stored} partitions but STREAM_PARTITIONS={configured}: "
            f"run `taskstream projections repartition --partitions {configured}` first "
            f"(or set STREAM_PARTITIONS={stored})")
        self.stream = stream
        self.stored = stored
        self.configured = configured


@dataclass(frozen=True)
class Partitioning:
    """How many partitions the log has, and what each one is called."""

    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("STREAM_PARTITIONS must be at least 1")

    @property
    def partitioned(self) -> bool:
        """True when the log is split (more than one partition)."""
        return self.count > 1

    def targets(self, task_id: int | None) -> Sequence[int]:
        """The partitions an event of `task_id` goes to (all of them for no task)."""
        if task_id is None:
            return range(self.count)
        return (task_id % self.count,)

    def owns(self, partition: int, task_id: int | None) -> bool:
        """True when `partition` receives the events of `task_id`."""
        return task_id is None or task_id % self.count == partition

    def streams(self, namespace: str, unpartitioned: str) -> list[str]:
        """Every partition's stream key; `unpartitioned` (today's key) for one partition."""
        if not self.partitioned:
            return [unpartitioned]
        return [f"{namespace}:events:{{{p}}}" for p in range(self.count)]

    def checkpoint_name(self, base: str, partition: int) -> str:
        """A projection's checkpoint name for a partition (`base` itself for one partition);
        the count is part of the name, so a re-partitioned log starts new checkpoints."""
        if not self.partitioned:
            return base
        return f"{base}:{partition}/{self.count}"

    def label(self, partition: int) -> str:
        """How logs and commands name a partition."""
        return f"partition {partition}/{self.count}" if self.partitioned else "the stream"


def mark_key(stream: str) -> str:
    """The key where the relay records how far a partition's stream holds the log."""
    return f"{stream}{MARK_SUFFIX}"


def count_key(stream: str) -> str:
    """The key where the partition count a stream was written with is kept (same slot)."""
    return f"{stream}{COUNT_SUFFIX}"


def check_counts(streams: Sequence[str], stored: Sequence[str | bytes | None],
                 count: int) -> None:
    """Raise PartitionCountMismatch when a stream's recorded count (None: none yet) is not
    `count`."""
    for stream, value in zip(streams, stored, strict=True):
        if value is not None and int(value) != count:
            raise PartitionCountMismatch(stream, int(value), count)


def claim_count(client: redis.Redis, streams: Sequence[str], count: int) -> None:
    """Record `count` beside every stream that has none yet, and raise
    PartitionCountMismatch when one was written with another count."""
    keys = [count_key(stream) for stream in streams]
    replies = pipelined(client, [("SET", key, str(count), "NX") for key in keys]
                        + [("GET", key) for key in keys])
    if failed := [reply for reply in replies if isinstance(reply, Exception)]:
        raise failed[0]
    check_counts(streams, replies[len(keys):], count)


def encode_mark(pseq: int, seq: int) -> str:
    """The relay's mark: the stream's last position `pseq` holds every event of the partition
    with a global seq up to `seq`."""
    return f"{pseq}:{seq}"


def decode_mark(value: str | bytes | None) -> tuple[int, int]:
    """(pseq, seq) of a mark; (0, 0) when there is none."""
    if not value:
        return 0, 0
    text = value.decode() if isinstance(value, bytes) else value
    pseq, seq = text.split(":", 1)
    return int(pseq), int(seq)
