"""Use cases of the read API: pages of the TaskLogger and the audit, with the date cache."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from services.logger_service.metrics import count_cache
from shared.events import format_timestamp

log = logging.getLogger("taskstream.logger.queries")

Row = dict[str, Any]


class EntryNotFound(LookupError):
    """No TaskLogger entry has that id."""


class Reader(Protocol):
    """What the queries need from the projection tables."""

    def entries_page(self, day: dt.date | None, offset: int, limit: int
                     ) -> tuple[list[Row], int]: ...
    def entry(self, entry_id: int) -> Row | None: ...
    def audit_page(self, task_id: int | None, offset: int, limit: int
                   ) -> tuple[list[Row], int]: ...


class PageCache(Protocol):
    """What the queries need from the date cache."""

    def generation(self, day: dt.date) -> int: ...
    def page_key(self, day: dt.date, generation: int, page: int, per_page: int) -> str: ...
    def get(self, key: str) -> Any | None: ...
    def put(self, key: str, value: Any) -> None: ...


@dataclass(frozen=True)
class Page:
    """One page of results with the total count and whether it came from the cache."""

    items: list[Row]
    total: int
    page: int
    per_page: int
    cache: str | None = None


def _json_ready(row: Row) -> Row:
    return {k: (format_timestamp(v) if isinstance(v, dt.datetime) else
                v.isoformat() if isinstance(v, dt.date) else v) for k, v in row.items()}


def list_entries(reader: Reader, page: int, per_page: int) -> Page:
    """Every TaskLogger entry, newest day first."""
    rows, total = reader.entries_page(None, (page - 1) * per_page, per_page)
    return Page([_json_ready(r) for r in rows], total, page, per_page)


def list_day(reader: Reader, cache: PageCache, day: dt.date, page: int, per_page: int) -> Page:
    """One day's entries, served from the cache of the day's current generation if there."""
    try:
        key = cache.page_key(day, cache.generation(day), page, per_page)
        cached = cache.get(key)
    except redis.RedisError as exc:  # the database answers without the cache
        log.warning("date cache unavailable: %s", exc)
        key, cached = None, None
    if cached is not None:
        count_cache("hit")
        return Page(cached["items"], cached["total"], page, per_page, "HIT")
    count_cache("miss")
    rows, total = reader.entries_page(day, (page - 1) * per_page, per_page)
    result = Page([_json_ready(r) for r in rows], total, page, per_page, "MISS")
    if key is not None:
        _store(cache, key, result)
    return result


def _store(cache: PageCache, key: str, page: Page) -> None:
    try:
        cache.put(key, {"items": page.items, "total": page.total})
    except redis.RedisError as exc:
        log.warning("could not cache %s: %s", key, exc)


def get_entry(reader: Reader, entry_id: int) -> Row:
    """One TaskLogger entry, or EntryNotFound."""
    row = reader.entry(entry_id)
    if row is None:
        raise EntryNotFound(entry_id)
    return _json_ready(row)


def list_audit(reader: Reader, task_id: int | None, page: int, per_page: int) -> Page:
    """Audit entries (of one task, or all), oldest first."""
    rows, total = reader.audit_page(task_id, (page - 1) * per_page, per_page)
    return Page([_json_ready(r) for r in rows], total, page, per_page)
