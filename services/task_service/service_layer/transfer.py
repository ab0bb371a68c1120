"""The daily transfer: explicit requests (each its own event) and the daily schedule's runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from services.task_service.domain.model import Context, transfer_event
from services.task_service.service_layer.tasks import Clock, utcnow
from services.task_service.service_layer.unit_of_work import UnitOfWork
from shared.timezones import local_date, zone

ONE_DAY = timedelta(days=1)
MAX_CATCH_UP_DAYS = 7  # a schedule down for longer runs only the last week's dates


@dataclass(frozen=True)
class TransferRequested:
    """The date, and the id and position of its `DailyTransferRequested` event."""

    date: date
    event_id: str
    position: int


@dataclass(frozen=True)
class Schedule:
    """When the daily transfer runs: a time of day in a time zone."""

    at: time
    timezone: str

    def latest(self, now: datetime) -> date:
        """The date of the latest scheduled run at or before `now`."""
        local = now.astimezone(zone(self.timezone))
        return local.date() if local.time() >= self.at else local.date() - ONE_DAY


def today_in(timezone: str, clock: Clock = utcnow) -> date:
    """Today's date in a time zone."""
    return local_date(clock(), timezone)


def request_transfer(uow: UnitOfWork, day: date, context: Context, clock: Clock = utcnow,
                     ) -> TransferRequested:
    """Append `DailyTransferRequested {date}`: every request is an event of its own."""
    with uow:
        uow.events.lock()  # numbered at once: what it transfers is what precedes it
        [(seq, event_id)] = uow.events.append([transfer_event(day)], context, clock())
        uow.commit()
    return TransferRequested(day, str(event_id), int(seq or 0))


def missed_dates(last: date | None, latest: date) -> list[date]:
    """Scheduled dates still to run: after `last` up to `latest`, no more than a week's."""
    first = latest if last is None else max(last + ONE_DAY,
                                             latest - (MAX_CATCH_UP_DAYS - 1) * ONE_DAY)
    return [first + offset * ONE_DAY for offset in range((latest - first).days + 1)]


def run_schedule(uow: UnitOfWork, schedule: Schedule, context: Context, clock: Clock = utcnow,
                 ) -> list[TransferRequested]:
    """Append the scheduled transfer of every date whose run is due and not yet made."""
    now = clock()
    latest = schedule.latest(now)
    with uow:
        if not missed_dates(uow.events.last_scheduled_transfer(), latest):
            return []  # the usual case, answered without the sequencing lock
        uow.events.lock()  # check again and append under the lock: one run per date
        due = missed_dates(uow.events.last_scheduled_transfer(), latest)
        ids = uow.events.append([transfer_event(day, scheduled=True) for day in due],
                                context, now)
        uow.commit()
    return [TransferRequested(day, str(event_id), int(seq or 0))
            for day, (seq, event_id) in zip(due, ids, strict=True)]
