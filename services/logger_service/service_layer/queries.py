"""Use cases of the read API: pages of the TaskLogger and the audit, with the date cache."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from services.logger_service.adapters.metrics import count_cache
from services.logger_service.service_layer.filters import TaskFilter
from shared.events import format_timestamp

log = logging.getLogger("taskstream.logger.queries")

Row = dict[str, Any]


class EntryNotFound(LookupError):
    """No TaskLogger entry has that id."""


class Reader(Protocol):
    """What the queries need from the projection tables."""

    def entries_page(self, day: dt.date | None, filters: TaskFilter, offset: int, limit: int
                     ) -> tuple[list[Row], int]: ...
    def entry(self, entry_id: int) -> Row | None: ...
    def audit_page(self, task_id: int | None, offset: int, limit: int
                   ) -> tuple[list[Row], int]: ...


@dataclass(frozen=True)
class CachedPage:
    """A date page as cached: the total and the items as the JSON the API answers with."""

    total: int
    items_json: bytes


class PageCache(Protocol):
    """What the queries need from the date cache.

    `lookup` gives the version to cache the page under (None: cache nothing now) and the
    page cached under that version, if any.
    """

    def lookup(self, day: dt.date, page: int, per_page: int
               ) -> tuple[int | None, CachedPage | None]: ...
    def store(self, day: dt.date, page: int, per_page: int, generation: int,
              cached: CachedPage) -> None: ...


@dataclass(frozen=True)
class Page:
    """One page of results with the total count and whether it came from the cache.

    A page read from the database holds its rows; one from the cache holds them as JSON,
    decoded only if something asks for `items`.
    """

    total: int
    page: int
    per_page: int
    cache: str | None = None
    rows: list[Row] | None = None
    encoded: bytes | None = None

    @property
    def items(self) -> list[Row]:
        """The entries of the page."""
        return self.rows if self.rows is not None else json.loads(self.encoded or b"[]")

    def items_json(self) -> bytes:
        """The entries of the page as a JSON array."""
        if self.encoded is not None:
            return self.encoded
        return json.dumps(self.rows, ensure_ascii=False).encode()


def json_ready(row: Row) -> Row:
    """A row with its times and dates as the API writes them."""
    return {k: (format_timestamp(v) if isinstance(v, dt.datetime) else
                v.isoformat() if isinstance(v, dt.date) else v) for k, v in row.items()}


EVERY_ENTRY = TaskFilter()


def list_entries(reader: Reader, page: int, per_page: int, day: dt.date | None = None,
                 filters: TaskFilter = EVERY_ENTRY) -> Page:
    """TaskLogger entries (of one day, or all, newest day first) that the filter lets through,
    read from the database."""
    rows, total = reader.entries_page(day, filters, (page - 1) * per_page, per_page)
    return Page(total, page, per_page, rows=[json_ready(r) for r in rows])


def list_day(reader: Reader, cache: PageCache, day: dt.date, page: int, per_page: int) -> Page:
    """One day's entries, served from the cache of the day's current generation if there."""
    try:
        generation: int | None
        generation, cached = cache.lookup(day, page, per_page)
    except redis.RedisError as exc:  # the database answers without the cache
        log.warning("date cache unavailable: %s", exc)
        generation, cached = None, None
    if cached is not None:
        count_cache("hit")
        return Page(cached.total, page, per_page, "HIT", encoded=cached.items_json)
    count_cache("miss")
    result = dataclasses.replace(list_entries(reader, page, per_page, day), cache="MISS")
    if generation is not None:
        _store(cache, day, generation, result)
    return result


def _store(cache: PageCache, day: dt.date, generation: int, page: Page) -> None:
    try:
        cache.store(day, page.page, page.per_page, generation,
                    CachedPage(page.total, page.items_json()))
    except redis.RedisError as exc:
        log.warning("could not cache page %s of %s: %s", page.page, day, exc)


def get_entry(reader: Reader, entry_id: int) -> Row:
    """One TaskLogger entry, or EntryNotFound."""
    row = reader.entry(entry_id)
    if row is None:
        raise EntryNotFound(entry_id)
    return json_ready(row)


def list_audit(reader: Reader, task_id: int | None, page: int, per_page: int) -> Page:
    """Audit entries (of one task, or all), oldest first."""
    rows, total = reader.audit_page(task_id, (page - 1) * per_page, per_page)
    return Page(total, page, per_page, rows=[json_ready(r) for r in rows])
