"""Calendar days in a configured time zone (`TRANSFER_TIMEZONE`), the same for every service."""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class UnknownTimezone(ValueError):
    """The name is not an IANA time zone."""


@cache
def zone(name: str) -> ZoneInfo:
    """The time zone of an IANA name such as `Europe/Paris` (UnknownTimezone if none)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownTimezone(name) from None


def local_date(moment: datetime, timezone: str) -> date:
    """The calendar day a moment falls on in a time zone."""
    return moment.astimezone(zone(timezone)).date()
