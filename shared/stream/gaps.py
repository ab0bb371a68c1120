"""The events from a checkpoint on, with no gap: from the deliveries, the stream or the backfill.

A consumer that takes over (or whose group was made after a trim) can be handed entries past
events it never saw. Those are read with `bus.range` first; what the stream no longer holds is
asked back from the publisher, which reads it from the event store (`bus.backfill`).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.stream.bus import EventBus
from shared.stream.entries import Delivery


class StreamGap(RuntimeError):
    """Events after the checkpoint are in neither the stream nor the backfill (yet)."""


def fill_gaps(bus: EventBus, checkpoint: int, fresh: Sequence[Delivery], batch_size: int
              ) -> list[Delivery]:
    """The events from `checkpoint + 1` on, in order, up to the first none of them has yet.

    Raises StreamGap when that is the very first (it was requested from the publisher).
    """
    if len(fresh) == fresh[-1].seq - checkpoint:  # no gap
        return list(fresh)
    last = min(fresh[-1].seq, checkpoint + max(len(fresh), batch_size))
    run = _run_after(checkpoint, _found(bus, checkpoint, last, fresh, batch_size))
    if not run:
        raise StreamGap(f"events from {checkpoint + 1} on are in neither the stream nor the "
                        "backfill yet; asked the publisher to put them back from the event "
                        "store")
    return run


def stored_run(bus: EventBus, after: int, last: int, count: int) -> list[Delivery]:
    """The events from `after + 1` on (to `last`, at most `count`) that the stream or the
    backfill hold, up to the first they lack (empty: it was asked back from the publisher).

    For a reader of past events (a replay), which has no deliveries of its own.
    """
    return _run_after(after, _found(bus, after, min(last, after + count), (), count))


def _run_after(after: int, found: dict[int, Delivery]) -> list[Delivery]:
    """The events `after + 1, after + 2, ...` of `found`, up to the first missing one."""
    run: list[Delivery] = []
    while (following := found.get(after + len(run) + 1)) is not None:
        run.append(following)
    return run


def _found(bus: EventBus, checkpoint: int, last: int, fresh: Sequence[Delivery],
           batch_size: int) -> dict[int, Delivery]:
    """The events in `checkpoint + 1..last` the deliveries, the stream and the backfill have."""
    found = {d.seq: d for d in bus.range(checkpoint + 1, last, last - checkpoint)}
    found.update({d.seq: d for d in fresh if d.seq <= last})
    missing = [seq for seq in range(checkpoint + 1, last + 1) if seq not in found]
    if missing:
        put_back = bus.backfill(missing[0], missing[-1], batch_size)
        found.update({d.seq: d for d in put_back if d.seq not in found})
    return found
