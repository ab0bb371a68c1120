"""The event envelope's JSON codec."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.events import Actor, EventDecodeError, EventEnvelope, decode, encode, to_dict

EVENT = EventEnvelope(
    event_id="0b6f1c1e-5b1a-4f0e-9d39-9b8f8f7a6c01", seq=1042, type="TaskStatusChanged",
    task_id=3, version=4, occurred_at=datetime(2025, 4, 5, 17, 32, tzinfo=UTC),
    data={"previous_status": "in_progress", "new_status": "completed"},
    actor=Actor(1, "admin", "admin"), correlation_id="req-1",
)


def test_round_trip_keeps_every_field() -> None:
    assert decode(encode(EVENT)) == EVENT


def test_encoding_follows_the_contract() -> None:
    raw = to_dict(EVENT)
    assert list(raw) == ["event_id", "seq", "type", "task_id", "version", "occurred_at",
                         "schema_version", "actor", "correlation_id", "data"]
    assert raw["occurred_at"] == "2025-04-05T17:32:00Z"
    assert raw["actor"] == {"id": 1, "username": "admin", "role": "admin"}
    assert EVENT.entry_id == "1042-0"


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b'{"seq": 1}', b"\xff\xfe"])
def test_malformed_payloads_are_refused(payload: bytes) -> None:
    with pytest.raises(EventDecodeError):
        decode(payload)
