"""How each event changes the logger's projections: task replica, TaskLogger, audit."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from shared.events import EventEnvelope, from_dict, parse_json, type_prefix
from shared.timezones import local_date

log = logging.getLogger("taskstream.projector")

PROJECTION_NAME = "logger"

# A TaskCreated is recognised from the start of its JSON, without parsing it; anything else
# is parsed. PostgreSQL parses the recognised ones (and rejects bad JSON).
CREATED_PREFIX = type_prefix("TaskCreated")
TASK_FIELDS = ("title", "description", "status", "priority", "due_date")


class ProjectionStore(Protocol):
    """The projection tables inside one transaction (see adapters.projection_store)."""

    def lock_checkpoint(self, name: str) -> int: ...
    def advance_checkpoint(self, name: str, seq: int) -> None: ...
    def insert_tasks(self, rows: list[dict[str, Any]]) -> None: ...
    def insert_encoded_tasks(self, payloads: list[str]) -> None: ...
    def update_task(self, task_id: int, values: Mapping[str, Any]) -> str | None: ...
    def update_log_row(self, task_id: int, day: dt.date, values: Mapping[str, Any]) -> bool: ...
    def add_audit(self, row: Mapping[str, Any]) -> None: ...
    def delete_log_rows(self, task_id: int) -> set[dt.date]: ...
    def purge_task(self, task_id: int) -> set[dt.date]: ...
    def transfer(self, day: dt.date, at: dt.datetime) -> int: ...
    def transfer_total(self, request: int, day: dt.date, count: int) -> int | None: ...
    def record_skip(self, name: str, seq: int, error: str) -> None: ...
    def take_skip(self, name: str, seq: int) -> bool: ...
    def task_version(self, task_id: int) -> int | None: ...
    def mark_changed(self, days: Iterable[dt.date]) -> dict[dt.date, int]: ...


def task_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """The replica columns an event's data sets (due dates parsed)."""
    values = {name: data[name] for name in TASK_FIELDS if name in data}
    if values.get("due_date"):
        values["due_date"] = dt.date.fromisoformat(str(values["due_date"]))
    return values


def day_of(event: EventEnvelope, timezone: str) -> dt.date:
    """The calendar day an event happened on in the transfer's time zone."""
    return local_date(event.occurred_at, timezone)


def new_task_row(event: EventEnvelope) -> dict[str, Any]:
    """The replica row a `TaskCreated` event describes."""
    values = task_values(event.data)
    return {
        "task_id": _task_id(event), "title": str(event.data["title"]),
        "description": values.get("description"), "status": values.get("status", "active"),
        "priority": values.get("priority", "medium"), "due_date": values.get("due_date"),
        "deleted": False, "version": event.version or 1, "updated_at": event.occurred_at,
        "created_by": _int_or_none(event.data.get("created_by")),
        "created_at": event.occurred_at,
    }


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _task_id(event: EventEnvelope) -> int:
    if event.task_id is None:
        raise ValueError(f"{event.type} event {event.seq} has no task_id")
    return event.task_id


def _touch(store: ProjectionStore, event: EventEnvelope, values: dict[str, Any], timezone: str,
           ) -> set[dt.date]:
    """Update the replica and that day's TaskLogger row; audit a status change."""
    task_id = _task_id(event)
    replica = dict(values, updated_at=event.occurred_at)
    if event.version is not None:
        replica["version"] = event.version
    previous = store.update_task(task_id, replica)
    if previous is None:
        return set()  # not (or no longer) in the replica: nothing to show
    new_status = values.get("status")
    if new_status is not None and new_status != previous:
        store.add_audit({
            "event_id": event.event_id, "task_id": task_id, "previous_status": previous,
            "new_status": new_status, "timestamp": event.occurred_at,
            "modified_by": event.actor.username if event.actor else None,
        })
    day = day_of(event, timezone)
    return {day} if store.update_log_row(task_id, day, values) else set()


def task_updated(store: ProjectionStore, event: EventEnvelope, timezone: str) -> set[dt.date]:
    """Apply the changed fields."""
    return _touch(store, event, task_values(event.data.get("changes") or {}), timezone)


def task_status_changed(store: ProjectionStore, event: EventEnvelope, timezone: str,
                        ) -> set[dt.date]:
    """Apply a status change and audit it."""
    return _touch(store, event, {"status": str(event.data["new_status"])}, timezone)


def task_soft_deleted(store: ProjectionStore, event: EventEnvelope, timezone: str,
                      ) -> set[dt.date]:
    """Keep the task out of later transfers and its logged days out of every read.

    Its replica (marked deleted) and its audit entries stay; its TaskLogger rows go.
    """
    task_id = _task_id(event)
    store.update_task(task_id, {"deleted": True, "updated_at": event.occurred_at})
    return store.delete_log_rows(task_id)


def task_purged(store: ProjectionStore, event: EventEnvelope, timezone: str) -> set[dt.date]:
    """Delete the replica; the database cascade removes its log rows and audit entries."""
    return store.purge_task(_task_id(event))


def daily_transfer(store: ProjectionStore, event: EventEnvelope, timezone: str,
                   ) -> set[dt.date]:
    """Copy every live active task not yet in the day's TaskLogger into it (once per day);
    in a partitioned log, the partition's tasks, the total logged by the last partition."""
    day = dt.date.fromisoformat(str(event.data["date"]))
    count = store.transfer(day, event.occurred_at)
    total = store.transfer_total(event.seq, day, count)  # None until every partition has it
    if total is not None:
        log.info("Transferred %d active tasks from TaskManager to TaskLogger", total,
                 extra={"date": day.isoformat(), "seq": event.seq})
    return {day} if count else set()


# Each handler gets the transfer's time zone, which says on which day an event happened.
HANDLERS: dict[str, Callable[[ProjectionStore, EventEnvelope, str], set[dt.date]]] = {
    "TaskUpdated": task_updated,
    "TaskStatusChanged": task_status_changed,
    "TaskSoftDeleted": task_soft_deleted,
    "TaskPurged": task_purged,
    "DailyTransferRequested": daily_transfer,
}


class LoggerBatch:
    """One transaction of the projector: events applied in order, then the checkpoint.

    Consecutive `TaskCreated` events are inserted together, in one statement. Arriving
    encoded from the stream, they are not even decoded here: their JSON payloads go to
    PostgreSQL as one array, which reads the columns out of them.
    """

    def __init__(self, store: ProjectionStore, name: str = PROJECTION_NAME, *,
                 timezone: str = "UTC") -> None:
        self.store = store
        self.name = name
        self.timezone = timezone
        self.checkpoint = store.lock_checkpoint(name)
        self.created: list[dict[str, Any]] = []
        self.created_encoded: list[str] = []
        self.touched: set[dt.date] = set()

    def apply_encoded(self, payload: str, stream_id: str = "") -> None:
        """Apply one event as it came from the stream (JSON)."""
        if CREATED_PREFIX.match(payload):
            self.created_encoded.append(payload)
            return
        raw = parse_json(payload)
        if raw.get("type") == "TaskCreated":
            self.created_encoded.append(payload)
            return
        self.apply(from_dict(raw, stream_id))

    def apply(self, event: EventEnvelope) -> None:
        """Apply one event (unknown types are skipped, for forward compatibility)."""
        if event.type == "TaskCreated":
            self.created.append(new_task_row(event))
            return
        self.flush()
        handler = HANDLERS.get(event.type)
        if handler is None:
            log.info("skipping event %d of unknown type %s", event.seq, event.type)
            return
        self.touched |= handler(self.store, event, self.timezone)

    def skip(self, seq: int, error: str) -> None:
        """Record that the event `seq` is passed over (dead-lettered), in this transaction."""
        self.flush()
        self.store.record_skip(self.name, seq, error)

    def advance(self, seq: int) -> None:
        """Write what is buffered and the new checkpoint."""
        self.flush()
        self.store.advance_checkpoint(self.name, seq)
        self.checkpoint = seq

    def discard(self) -> None:
        """Drop the new tasks buffered and not inserted yet (their savepoint rolled back)."""
        self.created, self.created_encoded = [], []

    def flush(self) -> None:
        """Insert the buffered new tasks."""
        if self.created:
            rows, self.created = self.created, []
            self.store.insert_tasks(rows)
        if self.created_encoded:
            payloads, self.created_encoded = self.created_encoded, []
            self.store.insert_encoded_tasks(payloads)


Transaction = Callable[[], AbstractContextManager[ProjectionStore]]


class DateCache(Protocol):
    """What the projection tells the date-page cache about the days a transaction changes."""

    def changing(self, versions: Mapping[dt.date, int]) -> None:
        """Before the commit: stop serving the days' cached pages (raises if it cannot)."""

    def changed(self, versions: Mapping[dt.date, int]) -> None:
        """After the commit: the days' new versions (a failure is repaired later, not raised)."""


class NoDateCache:
    """The date cache of a projection nobody reads through a cache (tests, benchmarks)."""

    def changing(self, versions: Mapping[dt.date, int]) -> None:
        """Nothing cached."""

    def changed(self, versions: Mapping[dt.date, int]) -> None:
        """Nothing cached."""


def mark_changed(store: ProjectionStore, cache: DateCache, days: Iterable[dt.date]
                 ) -> dict[dt.date, int]:
    """Inside the transaction: new versions for the changed days, their pages withdrawn."""
    if not days:
        return {}
    versions = store.mark_changed(days)
    cache.changing(versions)
    return versions


class LoggerProjection:
    """The consumer's view of the logger projections: batches that commit with checkpoints."""

    def __init__(self, transaction: Transaction, cache: DateCache | None = None,
                 name: str = PROJECTION_NAME, *, timezone: str = "UTC") -> None:
        self.transaction = transaction
        self.cache = cache or NoDateCache()
        self.name = name
        self.timezone = timezone

    @contextmanager
    def batch(self) -> Iterator[LoggerBatch]:
        """Open a transaction; version the days it changed; after the commit, publish them."""
        with self.transaction() as store:
            batch = LoggerBatch(store, self.name, timezone=self.timezone)
            yield batch
            batch.flush()
            versions = mark_changed(store, self.cache, batch.touched)
        if versions:
            self.cache.changed(versions)
