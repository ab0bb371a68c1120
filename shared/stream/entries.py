"""What the stream holds: entries with ids `<seq>-0` whose one field is the event's JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

PAYLOAD_FIELD = "event"

Encoded = tuple[int, str]  # an event's seq and its envelope as JSON (as on the stream)


@dataclass(slots=True)
class Delivery:
    """One stream entry handed to a consumer (treated as immutable).

    Not a frozen dataclass: a consumer builds thousands of these per batch, and a frozen
    dataclass's constructor costs three times as much.
    """

    entry_id: str
    payload: str
    deliveries: int = 1
    #: True for an event put back from the event store (not an entry of the stream).
    backfilled: bool = False
    #: The event's global sequence number, taken from the entry id.
    seq: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.seq = seq_of(self.entry_id)


@dataclass(frozen=True)
class GroupInfo:
    """What a consumer group looks like right now."""

    pending: int
    consumers: int
    last_delivered_seq: int


def seq_of(entry_id: str | bytes) -> int:
    """Return the sequence number encoded in a `<seq>-0` entry id."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


def log_seq(payload: str | bytes) -> int:
    """The global `seq` inside an entry's payload (on a partition stream the entry id is the
    partition's position, and the envelope keeps the log's seq)."""
    return int(json.loads(payload)["seq"])


def entry_id_of(seq: int) -> str:
    """Return the entry id `<seq>-0` of the event `seq`."""
    return f"{seq}-0"


def dead_letter_fields(group: str, delivery: Delivery, error: str) -> dict[str, str]:
    """The fields of a dead-letter entry: the event's entry id, group, payload and error."""
    return {
        "entry_id": delivery.entry_id, "group": group, PAYLOAD_FIELD: delivery.payload,
        "error": error[:2000], "deliveries": str(delivery.deliveries),
    }
