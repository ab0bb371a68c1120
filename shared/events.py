"""The event envelope of the public contract and its JSON codec."""

from __future__ import annotations

import json
import re
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = 1

EVENT_TYPES = (
    "TaskCreated",
    "TaskUpdated",
    "TaskStatusChanged",
    "TaskSoftDeleted",
    "TaskPurged",
    "DailyTransferRequested",
)


# The envelope's fields in the order every encoder writes them: `to_dict` here, and the SQL
# the relay reads (generated from this tuple). `event_id`, `seq` and `type` come first, so a
# consumer can tell an event's type from the start of its JSON (see `type_prefix`).
ENVELOPE_FIELDS = ("event_id", "seq", "type", "task_id", "version", "occurred_at",
                   "schema_version", "actor", "correlation_id", "data")


class EventDecodeError(ValueError):
    """Raised when bytes from the bus are not a valid event envelope."""


@dataclass(frozen=True)
class Actor:
    """Who caused an event."""

    id: int | None
    username: str
    role: str


@dataclass(frozen=True)
class EventEnvelope:
    """One stored event as it travels on the bus."""

    event_id: str
    seq: int
    type: str
    task_id: int | None
    version: int | None
    occurred_at: datetime
    data: dict[str, Any]
    actor: Actor | None = None
    correlation_id: str | None = None
    schema_version: int = SCHEMA_VERSION
    stream_id: str = field(default="", compare=False)

    @property
    def entry_id(self) -> str:
        """The Redis stream entry id of this event: `<seq>-0`."""
        return f"{self.seq}-0"


def unix_millis(moment: datetime) -> int:
    """Milliseconds since the Unix epoch, as an event id carries them."""
    return int(moment.timestamp() * 1000)


def new_event_id(seq: int, occurred_at: datetime) -> uuid.UUID:
    """An event id: a UUIDv7 (RFC 9562), time-ordered, around a unique counter `seq` (the
    task service uses its events' internal ids, given before their seq).

    48 bits of `occurred_at`'s Unix milliseconds, the version (7), then `seq` as a 48-bit
    counter around the variant bits (its top 12 bits, the variant, its next 2 bits, 2 zero
    bits, its low 34 bits), then 24 random bits: unique because the counter is, and ascending
    with it within a millisecond. The task service's SQL builds the same layout (a test pins
    it).
    """
    high = (unix_millis(occurred_at) << 16) | 0x7000 | ((seq >> 36) & 0xFFF)
    low = (0b10 << 62) | (((seq >> 34) & 0b11) << 60) | ((seq & ((1 << 34) - 1)) << 24)
    return uuid.UUID(int=(high << 64) | low | secrets.randbits(24))


def format_timestamp(moment: datetime) -> str:
    """Format an aware datetime as ISO 8601 UTC with a `Z` suffix."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.isoformat().replace("+00:00", "Z")


def parse_timestamp(raw: str) -> datetime:
    """Parse an ISO 8601 timestamp (with `Z` or an offset) into an aware datetime."""
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def to_dict(event: EventEnvelope) -> dict[str, Any]:
    """Return the JSON-ready mapping of an envelope, in the contract's field order."""
    raw = {name: getattr(event, name) for name in ENVELOPE_FIELDS}
    raw["occurred_at"] = format_timestamp(event.occurred_at)  # keys keep their place
    raw["actor"] = asdict(event.actor) if event.actor else None
    return raw


# What the fields before `type` look like in an encoded envelope (whatever its whitespace).
_LEADING_VALUES = {"event_id": r'"[0-9a-fA-F-]{36}"', "seq": r"\d+"}


def type_prefix(event_type: str) -> re.Pattern[str]:
    """A pattern matching the start of an encoded envelope of that type, without parsing it."""
    leading = ENVELOPE_FIELDS[:ENVELOPE_FIELDS.index("type")]
    values = {name: _LEADING_VALUES[name] for name in leading}
    values["type"] = re.escape(json.dumps(event_type))
    members = [rf'\s*"{name}"\s*:\s*{value}\s*' for name, value in values.items()]
    return re.compile(r"\{" + ",".join(members) + ",")


def encode(event: EventEnvelope) -> str:
    """Encode an envelope as compact JSON."""
    return json.dumps(to_dict(event), separators=(",", ":"), ensure_ascii=False)


def from_dict(raw: dict[str, Any], stream_id: str = "") -> EventEnvelope:
    """Build an envelope from its mapping, checking the fields that matter."""
    try:
        actor = raw.get("actor")
        return EventEnvelope(
            event_id=str(raw["event_id"]),
            seq=int(raw["seq"]),
            type=str(raw["type"]),
            task_id=None if raw.get("task_id") is None else int(raw["task_id"]),
            version=None if raw.get("version") is None else int(raw["version"]),
            occurred_at=parse_timestamp(str(raw["occurred_at"])),
            data=dict(raw.get("data") or {}),
            actor=Actor(**actor) if actor else None,
            correlation_id=raw.get("correlation_id"),
            schema_version=int(raw.get("schema_version", SCHEMA_VERSION)),
            stream_id=stream_id,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EventDecodeError(f"not an event envelope: {exc}") from exc


def parse_json(payload: str | bytes) -> dict[str, Any]:
    """Parse an event payload into its JSON object, or raise EventDecodeError."""
    try:
        raw = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventDecodeError(f"event payload is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise EventDecodeError("event payload is not a JSON object")
    return raw


def decode(payload: str | bytes, stream_id: str = "") -> EventEnvelope:
    """Decode JSON bytes from the bus into an envelope."""
    return from_dict(parse_json(payload), stream_id)
