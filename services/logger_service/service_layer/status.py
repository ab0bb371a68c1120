"""Where a projection stands against the stream: checkpoint, head, lag, pending, dead letters."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from shared.events import decode
from shared.stream.bus import EventBus


@dataclass(frozen=True)
class ProjectionStatus:
    """One projection's position and backlog."""

    name: str
    checkpoint: int
    checkpoint_updated_at: dt.datetime | None
    stream_head: int
    lag_events: int
    lag_seconds: float
    pending: int
    consumers: int
    dead_letters: int

    def lines(self) -> list[str]:
        """Human-readable lines for the CLI."""
        moved = self.checkpoint_updated_at.isoformat() if self.checkpoint_updated_at else "never"
        return [
            f"projection:   {self.name}",
            f"checkpoint:   {self.checkpoint} (updated {moved})",
            f"stream head:  {self.stream_head}",
            f"lag:          {self.lag_events} events, {self.lag_seconds:.1f} s",
            f"pending:      {self.pending}",
            f"consumers:    {self.consumers}",
            f"dead letters: {self.dead_letters}",
        ]


def lag_seconds(bus: EventBus, checkpoint: int, head: int, now: dt.datetime) -> float:
    """Age of the oldest event not yet applied (0 when caught up or unknown)."""
    if head <= checkpoint:
        return 0.0
    oldest = bus.range(checkpoint + 1, head, 1)
    if not oldest:
        return 0.0
    try:
        occurred = decode(oldest[0].payload).occurred_at
    except ValueError:
        return 0.0
    return max(0.0, (now - occurred).total_seconds())


def projection_status(
    name: str, group: str, bus: EventBus, checkpoint: int,
    checkpoint_updated_at: dt.datetime | None, now: dt.datetime | None = None,
) -> ProjectionStatus:
    """Gather the status of one projection consuming through `group`."""
    now = now or dt.datetime.now(dt.UTC)
    head = bus.head()
    info = bus.group_info(group)
    return ProjectionStatus(
        name=name, checkpoint=checkpoint, checkpoint_updated_at=checkpoint_updated_at,
        stream_head=head, lag_events=max(0, head - checkpoint),
        lag_seconds=lag_seconds(bus, checkpoint, head, now),
        pending=info.pending if info else 0, consumers=info.consumers if info else 0,
        dead_letters=bus.dead_letter_count(),
    )
