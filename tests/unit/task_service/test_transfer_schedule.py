"""The daily schedule's arithmetic: the latest run due, and the dates a check must make up."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from services.task_service.service_layer.transfer import Schedule, missed_dates

PARIS = Schedule(time(2, 30), "Europe/Paris")


def utc(moment: str) -> datetime:
    return datetime.fromisoformat(moment).replace(tzinfo=UTC)


def test_the_latest_run_is_dated_in_the_schedules_zone() -> None:
    assert PARIS.latest(utc("2025-06-02T00:29")) == date(2025, 6, 1)  # 02:29 in Paris
    assert PARIS.latest(utc("2025-06-02T00:30")) == date(2025, 6, 2)
    assert PARIS.latest(utc("2025-06-01T23:00")) == date(2025, 6, 1)  # June 2nd in Paris


def test_a_run_in_the_hour_skipped_by_summer_time_is_due_after_it() -> None:
    # 2025-03-30: Paris clocks jump from 02:00 to 03:00, so 02:30 never happens.
    assert PARIS.latest(utc("2025-03-30T00:59")) == date(2025, 3, 29)
    assert PARIS.latest(utc("2025-03-30T01:00")) == date(2025, 3, 30)


def test_missed_dates_run_from_after_the_last_one_to_the_latest_a_week_at_most() -> None:
    assert missed_dates(None, date(2025, 6, 5)) == [date(2025, 6, 5)]
    assert missed_dates(date(2025, 6, 5), date(2025, 6, 5)) == []
    assert missed_dates(date(2025, 6, 6), date(2025, 6, 5)) == []  # the zone moved back
    assert missed_dates(date(2025, 6, 2), date(2025, 6, 4)) == [date(2025, 6, 3),
                                                                date(2025, 6, 4)]
    assert missed_dates(date(2025, 5, 1), date(2025, 6, 5)) == [
        date(2025, 5, day) for day in range(30, 32)] + [date(2025, 6, d) for d in range(1, 6)]
