"""CSV import: parse and validate on one thread while the database writes on another.

The upload, already received whole, is read once, as a stream, by a thread of its own
(`CsvBatches`): valid rows go, in batches already in PostgreSQL's COPY text format, through
a short queue to the request's transaction, which stages each batch and inserts its tasks
while the next is parsed (`BulkTaskWriter`), so the two cores work at once and parsing is
not added to the database's time. The events follow once every row has passed; a refused
file (any bad row, too many rows, not UTF-8 or not CSV) ends the transaction, rolled back,
so nothing of it is committed. Only a few batches are ever in memory.
"""

from __future__ import annotations

import contextlib
import csv
import io
import queue
import re
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import date
from typing import IO, Any

from services.task_service.adapters.bulk_import import copy_text
from services.task_service.domain.model import PRIORITIES, STATUSES, TITLE_MAX, Context
from services.task_service.service_layer.idempotency import IdempotentRequest, once_per_key
from services.task_service.service_layer.tasks import Clock, utcnow
from services.task_service.service_layer.unit_of_work import Committed, UnitOfWork

COLUMNS = ("title", "description", "status", "priority", "due_date")
MAX_REPORTED = 1000  # problems listed in `details`; the import is refused either way
BATCH_ROWS = 10_000  # rows per COPY batch
QUEUED_BATCHES = 4  # parsed batches waiting for the database, at most
HAND_OVER_WAIT = 0.05  # seconds between the parsing thread's looks at a stop request
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class CsvRejected(Exception):
    """The upload cannot be imported; carries the contract's status and body."""

    def __init__(self, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, details


class _NulRefusingReader(io.RawIOBase):
    """A raw stream over the upload that refuses NUL bytes."""

    def __init__(self, source: IO[bytes]) -> None:
        self.source = source

    def readable(self) -> bool:
        """Always readable."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill `buffer` from the upload."""
        data = self.source.read(len(buffer))
        if b"\x00" in data:  # binary, not text; PostgreSQL could not store it either
            raise csv.Error("it contains NUL bytes")
        buffer[: len(data)] = data
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


def _records(source: IO[bytes]) -> Iterator[list[str]]:
    text = io.TextIOWrapper(io.BufferedReader(_NulRefusingReader(source), 1 << 16),
                            encoding="utf-8-sig", newline="")
    return csv.reader(text)


def parse_rows(source: IO[bytes], max_rows: int, emit: Callable[[bytes], None]) -> int:
    """Read and validate the whole upload, handing its valid rows to `emit` in COPY batches
    (`(n, *COLUMNS)`, n numbering them from 1) until the first problem; how many rows. Raise
    CsvRejected (400/413/422) on any problem, once every one is known (413 at once)."""
    try:
        return _parse(_records(source), max_rows, emit)
    except UnicodeDecodeError:
        raise CsvRejected(400, "CSV file must be UTF-8 encoded") from None
    except csv.Error as exc:
        raise CsvRejected(400, f"File is not valid CSV: {exc}") from None


def _parse(records: Iterator[list[str]], max_rows: int, emit: Callable[[bytes], None]) -> int:
    header = next(records, None)
    if header is None:
        raise CsvRejected(422, "CSV file is empty")
    checker = RowChecker(check_header(header))
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
            if len(batch) >= BATCH_ROWS:
                emit(copy_text(batch).encode())
                batch.clear()
    if problems:
        raise CsvRejected(422, "CSV validation failed", problems)
    if count == 0:
        raise CsvRejected(422, "CSV file has no data rows")
    if batch:
        emit(copy_text(batch).encode())
    return count


class _Stopped(Exception):
    """The reader of the batches went away: the parsing thread ends."""


_END = object()


class CsvBatches:
    """The valid rows of an upload in COPY batches, parsed on a thread of its own
    (`parse_rows`) while the caller writes the batches already parsed; iterating raises the
    upload's CsvRejected after the last batch of a refused file, so that its writer rolls
    back.

    Use it as a context manager: leaving it early stops the thread and waits for it."""

    def __init__(self, source: IO[bytes], max_rows: int | None = None) -> None:
        self.source = source
        self.max_rows = sys.maxsize if max_rows is None else max_rows
        self._queue: queue.Queue[Any] = queue.Queue(QUEUED_BATCHES)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._parse, name="csv-parse", daemon=True)

    def __enter__(self) -> CsvBatches:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()  # a thread waiting to hand over a batch sees it within HAND_OVER_WAIT
        self._thread.join()

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _parse(self) -> None:
        try:
            parse_rows(self.source, self.max_rows, self._hand_over)
            outcome: Any = _END
        except _Stopped:
            return
        except BaseException as exc:  # raised again on the reader's thread
            outcome = exc
        with contextlib.suppress(_Stopped):
            self._hand_over(outcome)

    def _hand_over(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=HAND_OVER_WAIT)
                return
            except queue.Full:
                pass
        raise _Stopped


def import_csv(uow: UnitOfWork, source: IO[bytes], context: Context,
               idempotency: IdempotentRequest | None = None, clock: Clock = utcnow,
               max_rows: int | None = None) -> Committed[dict[str, int]]:
    """Write every row of a received upload as a task with its `TaskCreated` event, all in
    one transaction, parsing as it writes; CsvRejected (nothing written) if any is refused."""
    now = clock()

    def insert() -> dict[str, int]:
        with CsvBatches(source, max_rows) as batches:
            return {"imported": uow.imports.insert_created(batches, COLUMNS, context, now)}

    return once_per_key(uow, idempotency, 201, now, insert)
