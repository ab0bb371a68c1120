"""The daily transfer request: one `DailyTransferRequested` event per date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from services.task_service.domain.model import Context, transfer_event
from services.task_service.service_layer.tasks import Clock, utcnow
from services.task_service.service_layer.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class TransferRequested:
    """The date, the id of its event, and whether this call appended it."""

    date: date
    event_id: str
    created: bool


def today_in(timezone: str, clock: Clock = utcnow) -> date:
    """Today's date in a time zone."""
    return clock().astimezone(ZoneInfo(timezone)).date()


def request_transfer(uow: UnitOfWork, day: date, context: Context, clock: Clock = utcnow,
                     ) -> TransferRequested:
    """Append `DailyTransferRequested {date}` unless that date already has one."""
    now = clock()
    with uow:
        uow.events.lock()  # check and append under the store's lock: no race between callers
        existing = uow.events.transfer_for(day.isoformat())
        if existing is not None:
            return TransferRequested(day, str(existing), False)
        [(_seq, event_id)] = uow.events.append([transfer_event(day)], context, now)
        uow.commit()
    return TransferRequested(day, str(event_id), True)
