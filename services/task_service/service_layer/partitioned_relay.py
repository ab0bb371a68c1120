"""The relay of a partitioned log (`STREAM_PARTITIONS` > 1, `shared.stream.partitions`).

It follows the event store by global seq, as the one-stream relay does, and routes each
event to its task's partition (an event of no task to all of them), numbering it there one
past that partition stream's last position. Each partition stream is its own bookkeeping:
its last entry's id is its position and the envelope inside carries the global seq, so
after a crash the relay reads every partition's last entry and resumes from the lowest
global seq among them, skipping in each partition what it already holds. Since a
partition's positions are a function of the log alone, two relays, or one restarted after
a SIGKILL mid-batch, derive the same ids, and Redis refuses the ones it has.

Beside the partitions it keeps the whole log's stream of one-stream deployments (ids
`<seq>-0`), which the consumers that need every event in global order follow (webhooks,
`events tail`), in the same pipelined round trips.

After each batch it marks every partition with `<pseq>:<seq>` (the partition holds all its
events up to global seq `seq`, its last being `pseq`), in the same pipeline after the
entries: a reader of positions (`min_seq`) learns from it that an idle partition is caught up.

Positions and marks mean something only for one partition count, so before every pass it
records its count beside each partition stream that has none and refuses to publish
(`PartitionCountMismatch`) to streams written with another count.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from services.task_service.adapters.partition_reads import PartitionReads, Routed
from services.task_service.config import RelayConfig
from services.task_service.service_layer.relay import (
    BACKFILL_EVENTS_PER_REQUEST,
    BACKFILL_REQUESTS_PER_PASS,
    RELAY_BACKFILLED,
    RELAY_PUBLISHED,
    Relay,
)
from shared.stream.entries import log_seq
from shared.stream.partitions import Partitioning, claim_count, encode_mark, mark_key
from shared.stream.publishing import publish_to_streams
from shared.stream.read_ahead import chunks_after
from shared.stream.redis_bus import RedisStreamBus

log = logging.getLogger("taskstream.relay")

Position = tuple[int, int]  # a partition's last position and that event's global seq


class PartitionedRelay(Relay):
    """Follows the event store by seq and publishes each event to its partitions."""

    def __init__(self, engine: Engine, bus: RedisStreamBus, buses: list[RedisStreamBus],
                 config: RelayConfig) -> None:
        super().__init__(engine, bus, config)
        self.buses = buses
        self.partitioning = Partitioning(len(buses))
        self.reads = PartitionReads(engine, self.partitioning)
        self.through = 0  # every partition holds the log up to this global seq

    @property
    def streams_label(self) -> str:
        """How the log names where it publishes."""
        return f"{self.bus.stream} and {len(self.buses)} partitions ({self.buses[0].stream}, …)"

    def partition_head(self, partition: int) -> Position:
        """The partition stream's last position and its global seq; a stream that lost
        entries below its head is deleted first (it is republished from the store)."""
        bus = self.buses[partition]
        head = bus.read_head()
        if head is None or head.seq == 0:
            return 0, 0
        if not self._is_whole(head):
            log.warning("Stream %s lost entries below position %d (Redis lost data); "
                        "republishing it from the event store", bus.stream, head.seq)
            bus.drop()
            return 0, 0
        last = bus.last_entry()
        if last is not None and last.seq == head.seq:
            return head.seq, log_seq(last.payload)
        return head.seq, self.reads.seq_at(partition, head.seq)  # trimmed to nothing

    def publish_pending(self) -> int:
        """Number what is pending (unless a step is running), then publish every event above
        each partition's head; return how many entries were added (an event counts once in
        every stream it went to, as in `taskstream_relay_published_total`)."""
        claim_count(self.bus.client, [bus.stream for bus in self.buses], self.partitioning.count)
        self.sequencer.help_along()
        heads = [self.partition_head(p) for p in range(len(self.buses))]
        whole = self.stream_head()
        published = 0
        self.through = min(whole, *(seq for _, seq in heads))
        for rows in chunks_after(self._read_routed, self.through, "relay-read",
                                 full=self.config.batch_size):
            added = self._publish(rows, heads, whole)
            whole = max(whole, rows[-1][0])
            RELAY_PUBLISHED.inc(added)
            self.trim()
            published += added
            self.through = rows[-1][0]
            if self.stopping:
                break
        self.trim()
        self.report(self.through)
        return published

    def _publish(self, rows: list[Routed], heads: list[Position], whole: int) -> int:
        """XADD one batch to its partitions (advancing `heads`) and to the whole log's stream
        (above `whole`), and mark every partition."""
        entries = [(self.bus.stream, seq, payload) for seq, _, payload in rows if seq > whole]
        for seq, task_id, payload in rows:
            for partition in self.partitioning.targets(task_id):
                pseq, last = heads[partition]
                if seq > last:
                    heads[partition] = pseq + 1, seq
                    entries.append((self.buses[partition].stream, pseq + 1, payload))
        through = rows[-1][0]
        marks = {mark_key(bus.stream): encode_mark(heads[p][0], through)
                 for p, bus in enumerate(self.buses)}
        return publish_to_streams(self.bus.client, entries, marks)

    def _read_routed(self, after: int) -> list[Routed]:
        return self.reads.routed_after(after, self.config.batch_size)

    def serve_backfill(self) -> int:
        """Put back, per partition, the positions its consumers asked for."""
        whole, served = super().serve_backfill(), 0
        for partition, bus in enumerate(self.buses):
            for first, asked_last in bus.backfill_requests(BACKFILL_REQUESTS_PER_PASS):
                last = min(asked_last, first + BACKFILL_EVENTS_PER_REQUEST - 1)
                while first <= last and (entries := self.reads.positions(
                        partition, first, min(last, first + self.config.batch_size - 1))):
                    bus.offer_backfill(entries)
                    first, served = entries[-1][0] + 1, served + len(entries)
        RELAY_BACKFILLED.inc(served)
        return whole + served

    def trim(self) -> None:
        """Trim every partition by what its groups acknowledged, when trimming is on."""
        if self.config.maxlen:
            for bus in (self.bus, *self.buses):
                bus.trim(self.config.maxlen)
