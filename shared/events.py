"""The event envelope of the public contract and its JSON codec."""

from __future__ import annotations

import json
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


def new_event_id() -> str:
    """Return a fresh event id."""
    return str(uuid.uuid4())


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
    return {
        "event_id": event.event_id,
        "seq": event.seq,
        "type": event.type,
        "task_id": event.task_id,
        "version": event.version,
        "occurred_at": format_timestamp(event.occurred_at),
        "schema_version": event.schema_version,
        "actor": asdict(event.actor) if event.actor else None,
        "correlation_id": event.correlation_id,
        "data": event.data,
    }


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
