"""The dead-letter stream `<namespace>:events:dead`: list, read, add and remove entries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from shared.events import decode
from shared.stream.entries import PAYLOAD_FIELD, seq_of


@dataclass(frozen=True)
class DeadLetter:
    """One dead-letter entry: the event's stream entry, payload, error and delivery count."""

    entry_id: str
    event_entry_id: str
    group: str
    payload: str
    error: str
    deliveries: int

    @property
    def seq(self) -> int:
        """The event's seq."""
        return seq_of(self.event_entry_id)

    @property
    def type(self) -> str:
        """The event's type, or `?` when the payload cannot be decoded."""
        try:
            return decode(self.payload).type
        except ValueError:
            return "?"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _letter(entry_id: Any, fields: dict[Any, Any]) -> DeadLetter:
    found = {_text(k): _text(v) for k, v in fields.items()}
    return DeadLetter(
        entry_id=_text(entry_id), event_entry_id=found.get("entry_id", "0-0"),
        group=found.get("group", ""), payload=found.get(PAYLOAD_FIELD, ""),
        error=found.get("error", ""), deliveries=int(found.get("deliveries", "0") or 0),
    )


class DeadLetterStream:
    """The dead letters of the event stream `stream` (kept in `<stream>:dead`)."""

    def __init__(self, client: redis.Redis, stream: str) -> None:
        self.client = client
        self.key = f"{stream}:dead"

    def count(self) -> int:
        """How many dead letters there are."""
        return int(self.client.xlen(self.key))

    def list(self, count: int = 10_000) -> list[DeadLetter]:
        """The oldest `count` dead letters."""
        entries: Any = self.client.xrange(self.key, count=count)
        return [_letter(i, f) for i, f in entries]

    def get(self, entry_id: str) -> DeadLetter | None:
        """One dead letter by its entry id in the dead-letter stream."""
        try:
            found: Any = self.client.xrange(self.key, min=entry_id, max=entry_id, count=1)
        except redis.ResponseError:  # not a valid stream id
            return None
        return _letter(*found[0]) if found else None

    def remove(self, entry_id: str) -> bool:
        """Delete one dead letter; True if it was there."""
        return bool(self.client.xdel(self.key, entry_id))

    def add(self, seq: int, payload: str, error: str, group: str, deliveries: int = 0) -> str:
        """Add a dead letter for the event `seq`; return its entry id."""
        return _text(self.client.xadd(self.key, {
            "entry_id": f"{seq}-0", "group": group, PAYLOAD_FIELD: payload,
            "error": error[:2000], "deliveries": str(deliveries),
        }))
