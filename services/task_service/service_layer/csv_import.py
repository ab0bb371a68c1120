"""CSV import: stream, validate the whole file, then write every task and event in bulk.

The file is read once, as a stream. Valid rows go, already in PostgreSQL's COPY text format,
to a spooled temporary file (`CopySpool`: memory first, disk past a few MB), so the upload
never sits in memory twice; nothing touches the database until every row has passed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import IO, Any

from services.task_service.adapters.bulk_import import CopySpool
from services.task_service.domain.model import PRIORITIES, STATUSES, TITLE_MAX, Context
from services.task_service.service_layer.idempotency import IdempotentRequest, once_per_key
from services.task_service.service_layer.tasks import Clock, utcnow
from services.task_service.service_layer.unit_of_work import Committed, UnitOfWork

COLUMNS = ("title", "description", "status", "priority", "due_date")
MAX_REPORTED = 1000  # problems listed in `details`; the import is refused either way
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class CsvRejected(Exception):
    """The upload cannot be imported; carries the contract's status and body."""

    def __init__(self, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, details


@dataclass
class ParsedCsv:
    """A validated upload: its rows in COPY format, their count, and the file's digest."""

    copy_file: IO[bytes]
    rows: int
    fingerprint: str


class _DigestingReader(io.RawIOBase):
    """A raw stream over the upload that hashes every byte it hands out."""

    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        """Always readable."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill `buffer` from the upload."""
        data = self.source.read(len(buffer))
        if b"\x00" in data:  # binary, not text; PostgreSQL could not store it either
            raise csv.Error("it contains NUL bytes")
        buffer[: len(data)] = data
        self.digest.update(data)
        return len(data)


def _problem(row: int, field: str | None, message: str) -> dict[str, Any]:
    return {"row": row, "field": field, "message": message}


def check_header(header: list[str]) -> dict[str, int]:
    """Map each known column to its position, or refuse the file."""
    names = [name.strip().lower() for name in header]
    problems = [_problem(1, name, "Unknown column") for name in names if name not in COLUMNS]
    problems += [_problem(1, name, "Duplicate column")
                 for i, name in enumerate(names) if name in names[:i]]
    if "title" not in names:
        problems.append(_problem(1, "title", "Missing required column"))
    if problems:
        raise CsvRejected(422, "CSV validation failed", problems)
    return {name: i for i, name in enumerate(names)}


class RowChecker:
    """Validates data rows against the header's columns (the hot loop of an import)."""

    def __init__(self, positions: dict[str, int]) -> None:
        self.width = len(positions)
        self.title, self.description, self.status, self.priority, self.due = (
            positions.get(name) for name in COLUMNS)
        self.dates: dict[str, bool] = {}  # most files repeat few dates; bounded below

    def check(self, cells: list[str], row: int
              ) -> tuple[list[dict[str, Any]], tuple[str | None, ...]]:
        """Return the row's problems and its values (title, description, ...)."""
        if len(cells) != self.width:
            return [_problem(row, None, f"Expected {self.width} fields, found {len(cells)}")], ()
        title = "" if self.title is None else cells[self.title]
        status = ("" if self.status is None else cells[self.status].strip()) or "active"
        priority = ("" if self.priority is None else cells[self.priority].strip()) or "medium"
        due = "" if self.due is None else cells[self.due].strip()
        values = (title, None if self.description is None else cells[self.description] or None,
                  status, priority, due or None)
        if (0 < len(title) <= TITLE_MAX and status in STATUSES and priority in PRIORITIES
                and title.strip() and (not due or self._is_date(due))):
            return [], values
        return self._problems(title, status, priority, due, row), values

    def _is_date(self, raw: str) -> bool:
        known = self.dates.get(raw)
        if known is None:
            known = _is_date(raw)
            if len(self.dates) < 10_000:
                self.dates[raw] = known
        return known

    def _problems(self, title: str, status: str, priority: str, due: str, row: int
                  ) -> list[dict[str, Any]]:
        problems = []
        if not title.strip():
            problems.append(_problem(row, "title", "Title is required"))
        elif len(title) > TITLE_MAX:
            problems.append(_problem(row, "title",
                                     f"Title must be at most {TITLE_MAX} characters"))
        if status not in STATUSES:
            problems.append(_problem(row, "status", f"Must be one of: {', '.join(STATUSES)}"))
        if priority not in PRIORITIES:
            problems.append(_problem(row, "priority",
                                     f"Must be one of: {', '.join(PRIORITIES)}"))
        if due and not self._is_date(due):
            problems.append(_problem(row, "due_date", "Must be a date YYYY-MM-DD"))
        return problems


def _is_date(raw: str) -> bool:
    if not _DATE.match(raw):
        return False
    try:
        date.fromisoformat(raw)
    except ValueError:
        return False
    return True


def _records(source: IO[bytes]) -> tuple[_DigestingReader, Iterator[list[str]]]:
    raw = _DigestingReader(source)
    text = io.TextIOWrapper(io.BufferedReader(raw, 1 << 16), encoding="utf-8-sig", newline="")
    return raw, csv.reader(text)


def parse_csv(source: IO[bytes], max_rows: int | None = None) -> ParsedCsv:
    """Read and validate the whole upload; raise CsvRejected (400/413/422) on any problem."""
    raw, records = _records(source)
    try:
        return _parse(raw, records, sys.maxsize if max_rows is None else max_rows)
    except UnicodeDecodeError:
        raise CsvRejected(400, "CSV file must be UTF-8 encoded") from None
    except csv.Error as exc:
        raise CsvRejected(400, f"File is not valid CSV: {exc}") from None


def _parse(raw: _DigestingReader, records: Iterator[list[str]], max_rows: int) -> ParsedCsv:
    header = next(records, None)
    if header is None:
        raise CsvRejected(422, "CSV file is empty")
    checker = RowChecker(check_header(header))
    spool = CopySpool()
    problems: list[dict[str, Any]] = []
    count, batch, data_rows = 0, [], 0
    for row, cells in enumerate(records, start=2):  # spreadsheet numbering: header is row 1
        if not cells:
            continue
        data_rows += 1
        if data_rows > max_rows:  # counted as the file streams in: stop reading at once
            raise CsvRejected(413, f"CSV file has more than {max_rows} data rows")
        found, values = checker.check(cells, row)
        if found:
            problems.extend(found[: MAX_REPORTED - len(problems)])
        elif not problems:
            count += 1
            batch.append((count, *values))
            if len(batch) >= 10_000:
                spool.write(batch)
                batch.clear()
    spool.write(batch)
    return _finish(spool.file, count, problems, raw.digest.hexdigest())


def _finish(spool: IO[bytes], count: int, problems: list[dict[str, Any]], digest: str,
            ) -> ParsedCsv:
    if problems:
        spool.close()
        raise CsvRejected(422, "CSV validation failed", problems)
    if count == 0:
        spool.close()
        raise CsvRejected(422, "CSV file has no data rows")
    spool.seek(0)
    return ParsedCsv(spool, count, digest)


def import_csv(uow: UnitOfWork, parsed: ParsedCsv, context: Context,
               idempotency: IdempotentRequest | None = None, clock: Clock = utcnow,
               ) -> Committed[dict[str, int]]:
    """Write every row as a task with its `TaskCreated` event, all in one transaction."""
    now = clock()

    def insert() -> dict[str, int]:
        return {"imported": uow.imports.insert_created(parsed.copy_file, COLUMNS, context, now)}

    return once_per_key(uow, idempotency, 201, now, insert)
