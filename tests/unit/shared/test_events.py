"""The event envelope's JSON codec."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.events import (
    ENVELOPE_FIELDS,
    Actor,
    EventDecodeError,
    EventEnvelope,
    decode,
    encode,
    new_event_id,
    to_dict,
    type_prefix,
    unix_millis,
)

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


def test_the_field_list_names_every_field_of_the_envelope() -> None:
    """A field added to EventEnvelope is encoded (all but the bus's own stream id)."""
    names = {f.name for f in dataclasses.fields(EventEnvelope)} - {"stream_id"}
    assert sorted(ENVELOPE_FIELDS) == sorted(names)


def test_event_ids_are_uuid7_with_the_time_then_the_seq() -> None:
    """Version 7, RFC variant, the milliseconds first, the whole 48-bit seq recoverable."""
    seq = (1 << 48) - 12345
    found = new_event_id(seq, EVENT.occurred_at)
    assert (found.version, found.variant) == (7, uuid.RFC_4122)
    digits = found.hex  # ms(12) 7 seq>>36(3) variant|seq>>34&3(1) seq&(2**34-1)(9) random(6)
    assert int(digits[:12], 16) == unix_millis(EVENT.occurred_at) == 1743874320000
    nibble = int(digits[16], 16)
    assert (int(digits[13:16], 16) << 36) | ((nibble & 3) << 34) | int(digits[17:26], 16) == seq


def test_event_ids_ascend_with_seq_then_with_time() -> None:
    later = EVENT.occurred_at + timedelta(milliseconds=1)
    ids = [new_event_id(seq, EVENT.occurred_at) for seq in (1, 2, 1 << 34, 1 << 36, 1 << 47)]
    ids.append(new_event_id(1, later))
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


@pytest.mark.parametrize("kind", ["TaskCreated", "TaskPurged"])
def test_the_type_prefix_reads_the_type_off_the_start_of_an_encoding(kind: str) -> None:
    event = dataclasses.replace(EVENT, type=kind)
    assert type_prefix(kind).match(encode(event))
    spaced = f'{{ "event_id" : "{EVENT.event_id}", "seq" : 7 , "type" : "{kind}", "x": 1}}'
    assert type_prefix(kind).match(spaced)
    assert not type_prefix("TaskCreated").match(encode(dataclasses.replace(EVENT, type="X")))
