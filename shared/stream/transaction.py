"""One transaction of a consumer: unseen events applied in order, then the checkpoint.

Events at or below the checkpoint are skipped; gaps are filled first (`gaps.fill_gaps`). A
failure is reported as `EventFailed` naming the event that caused it, when that is known.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shared.stream.batch import Batch, Projection
from shared.stream.bus import EventBus
from shared.stream.entries import Delivery
from shared.stream.gaps import StreamGap, fill_gaps
from shared.stream.transient import is_transient


class EventFailed(Exception):
    """Applying (or decoding) the event with `seq` raised `cause`."""

    def __init__(self, seq: int, cause: Exception, delivery: Delivery | None = None) -> None:
        super().__init__(f"event {seq} failed: {cause!r}")
        self.seq = seq
        self.cause = cause
        self.delivery = delivery


@dataclass(frozen=True)
class Committed:
    """What one transaction did: events applied, and the checkpoint it committed."""

    applied: int
    through: int


def commit_deliveries(bus: EventBus, projection: Projection, deliveries: Sequence[Delivery],
                      batch_size: int, skip: Mapping[int, str]) -> Committed:
    """Apply unseen deliveries (gaps filled first) and advance the checkpoint, in one txn.

    Events in `skip` (seq → error) are passed over and recorded by the batch as skipped.
    """
    applied: list[int] = []
    try:
        with projection.batch() as batch:
            run = _unseen(bus, batch.checkpoint, deliveries, batch_size)
            if not run:
                return Committed(0, batch.checkpoint)
            _apply_run(batch, run, skip, applied)
            batch.advance(run[-1].seq)
    except (EventFailed, StreamGap):
        raise
    except Exception as exc:  # failed at commit: only a lone event can be blamed
        if len(applied) == 1 and not is_transient(exc):
            raise EventFailed(applied[0], exc) from exc
        raise
    if any(d.backfilled for d in run):
        bus.release_backfill(run[-1].seq)
    return Committed(len(applied), run[-1].seq)


def _unseen(bus: EventBus, checkpoint: int, deliveries: Sequence[Delivery], batch_size: int
            ) -> list[Delivery]:
    """The run of events after the checkpoint, gaps filled (empty when all are seen)."""
    fresh = [d for d in deliveries if d.seq > checkpoint]
    return fill_gaps(bus, checkpoint, fresh, batch_size) if fresh else []


def _apply_run(batch: Batch, run: Sequence[Delivery], skip: Mapping[int, str],
               applied: list[int]) -> None:
    """Apply the run in order (recording skips), noting each seq applied in `applied`."""
    for delivery in run:
        if delivery.seq in skip:
            batch.skip(delivery.seq, skip[delivery.seq])
            continue
        applied.append(delivery.seq)
        _apply(batch, delivery)


def _apply(batch: Batch, delivery: Delivery) -> None:
    """Apply one entry, blaming it for any failure but an outage or a conflict."""
    try:
        batch.apply_encoded(delivery.payload, delivery.entry_id)
    except Exception as exc:
        if is_transient(exc):
            raise  # retried, never blamed on the event
        raise EventFailed(delivery.seq, exc, delivery) from exc


def culprit_of(failure: EventFailed, delivery: Delivery) -> Delivery | None:
    """The delivery to blame for a failure while handling `delivery`, if this consumer may.

    An older stream entry (pending for another consumer) fails on its own when claimed; an
    event put back from the store has no delivery count of its own, so it is blamed after
    the deliveries of the entry waiting behind it.
    """
    if failure.seq == delivery.seq:
        return delivery
    found = failure.delivery
    if found is None or not found.backfilled:
        return None
    return Delivery(found.entry_id, found.payload, delivery.deliveries, backfilled=True)
