"""The chaos checker itself: it must see a duplicate, a gap and a wrong fold (no I/O)."""

from __future__ import annotations

import datetime as dt

from tests.chaos.checks import Findings, StoredEvent, check_commands, check_stream, fold
from tests.chaos.scenario import CommandResult

NOON = dt.datetime(2025, 4, 5, 12, tzinfo=dt.UTC)


def event(seq: int, type_: str, task_id: int | None, version: int | None,
          data: dict, rid: str = "r") -> StoredEvent:
    return StoredEvent(seq, f"e{seq}", task_id, version, type_, data, rid,
                       NOON + dt.timedelta(seconds=seq))


EVENTS = [
    event(1, "TaskCreated", 1, 1, {"title": "a", "status": "active"}, "c1"),
    event(2, "DailyTransferRequested", None, None, {"date": "2025-04-05"}),
    event(3, "TaskStatusChanged", 1, 2, {"previous_status": "active",
                                         "new_status": "completed"}, "u1"),
    event(4, "TaskCreated", 2, 1, {"title": "b"}, "c2"),
    event(5, "TaskPurged", 2, 2, {}),
]


def stream_of(seqs: list[int]) -> list[tuple[str, dict]]:
    return [(f"{s}-0", {"seq": s, "event_id": f"e{s}"}) for s in seqs]


def test_a_whole_stream_passes_and_a_duplicate_or_gap_is_counted() -> None:
    clean, broken = Findings(), Findings()
    check_stream(stream_of([1, 2, 3, 4, 5]), EVENTS, clean)
    check_stream(stream_of([1, 2, 2, 4, 5]), EVENTS, broken)
    assert (clean.duplicated, clean.missing_in_stream) == (0, 0)
    assert (broken.duplicated, broken.missing_in_stream) == (1, 1)


def test_the_fold_follows_the_documented_meaning_of_each_event() -> None:
    state, logged, audit = fold(EVENTS)
    assert set(state) == {1} and state[1]["status"] == "completed" and state[1]["version"] == 2
    # Transferred while active; the status change of the same day reaches that day's row.
    assert logged[(1, dt.date(2025, 4, 5))]["status"] == "completed"
    assert audit == {"e3": (1, "active", "completed")}


def test_a_soft_delete_takes_the_tasks_rows_out_of_the_fold() -> None:
    deleted = [*EVENTS, event(6, "TaskSoftDeleted", 1, 3, {"status": "completed"})]
    state, logged, audit = fold(deleted)
    assert state[1]["deleted"] and logged == {}
    assert audit == {"e3": (1, "active", "completed")}


def test_an_accepted_command_without_its_events_is_lost() -> None:
    found = Findings()
    check_commands([CommandResult("create", "c1", 201, {"id": 1}),
                    CommandResult("create", "c9", 201, {"id": 9}),
                    CommandResult("create", "c2", 503, None)], EVENTS, found)
    assert [c.split(":")[0] for c in found.lost_commands] == ["create c9"]
    assert found.committed_without_2xx == 1


def test_a_500_is_a_problem_whatever_the_fault() -> None:
    findings = Findings()
    check_commands([CommandResult("update", "u9", 500, {"error": "Internal server error"}),
                    CommandResult("update", "u8", 503, {"error": "Service unavailable"})],
                   EVENTS, findings)
    assert findings.server_errors == ["update u9: {'error': 'Internal server error'}"]
    assert any(problem.startswith("answered 500") for problem in findings.problems())
