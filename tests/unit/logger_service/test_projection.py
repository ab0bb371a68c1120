"""Projection rules and the date cache logic, on fakes of the store, reader and cache."""

from __future__ import annotations

import datetime as dt
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from services.logger_service.service_layer import queries
from services.logger_service.service_layer.projection import LoggerBatch, LoggerProjection
from tests.unit.logger_service.factories import DAY, EventFactory


@dataclass
class FakeStore:
    """Task replicas and log rows in dicts."""

    tasks: dict[int, dict[str, Any]] = field(default_factory=dict)
    log: dict[tuple[int, dt.date], dict[str, Any]] = field(default_factory=dict)
    audit: dict[str, dict[str, Any]] = field(default_factory=dict)
    checkpoint: int = 0
    insert_calls: int = 0
    encoded: list[list[str]] = field(default_factory=list)
    versions: dict[dt.date, int] = field(default_factory=dict)
    last_version: int = 0

    def lock_checkpoint(self, name):
        return self.checkpoint

    def advance_checkpoint(self, name, seq):
        self.checkpoint = seq

    def insert_encoded_tasks(self, payloads):
        self.encoded.append(list(payloads))

    def insert_tasks(self, rows):
        self.insert_calls += 1
        for row in rows:
            self.tasks.setdefault(row["task_id"], dict(row))

    def update_task(self, task_id, values):
        task = self.tasks.get(task_id)
        if task is None:
            return None
        previous = task["status"]
        task.update(values)
        return previous

    def update_log_row(self, task_id, day, values):
        row = self.log.get((task_id, day))
        if row is None:
            return False
        row.update({k: v for k, v in values.items() if k in ("title", "status", "priority")})
        return True

    def add_audit(self, row):
        if row["task_id"] in self.tasks:
            self.audit.setdefault(row["event_id"], dict(row))

    def delete_log_rows(self, task_id):
        days = {d for (t, d) in self.log if t == task_id}
        self.log = {k: v for k, v in self.log.items() if k[0] != task_id}
        return days

    def purge_task(self, task_id):
        self.tasks.pop(task_id, None)
        return self.delete_log_rows(task_id)

    def mark_changed(self, days):
        self.last_version += 1
        self.versions.update(dict.fromkeys(days, self.last_version))
        return {day: self.last_version for day in days}

    def transfer(self, day, at):
        added = 0
        for task_id, task in self.tasks.items():
            live = not task.get("deleted") and task["status"] in ("active", "in_progress")
            if live and (task_id, day) not in self.log:
                self.log[(task_id, day)] = dict(task)
                added += 1
        return added

    def transfer_total(self, request, day, count):
        return count


def apply_all(store: FakeStore, events) -> LoggerBatch:
    batch = LoggerBatch(store)
    for event in events:
        batch.apply(event)
    batch.advance(events[-1].seq)
    return batch


def test_consecutive_creations_are_inserted_together():
    made = EventFactory()
    store = FakeStore()
    apply_all(store, [made.created(1), made.created(2), made.created(3), made.transfer()])
    assert store.insert_calls == 1 and len(store.log) == 3


def test_a_transfer_logs_its_count_and_touches_its_day_only_when_it_adds(caplog):
    caplog.set_level(logging.INFO)
    made = EventFactory()
    store = FakeStore()
    first = apply_all(store, [made.created(1), made.transfer()])
    again = apply_all(store, [made.transfer()])
    assert (first.touched, again.touched) == ({DAY}, set())
    assert "Transferred 1 active tasks from TaskManager to TaskLogger" in caplog.text
    assert "Transferred 0 active tasks from TaskManager to TaskLogger" in caplog.text


def test_a_status_change_is_audited_with_the_actor_and_updates_the_day():
    made = EventFactory()
    store = FakeStore()
    batch = apply_all(store, [made.created(1), made.transfer(),
                              made.status(1, "active", "completed")])
    (entry,) = store.audit.values()
    assert (entry["previous_status"], entry["new_status"], entry["modified_by"]) == (
        "active", "completed", "admin")
    assert store.log[(1, DAY)]["status"] == "completed" and batch.touched == {DAY}


def test_a_change_updates_the_row_of_its_day_in_the_transfer_time_zone():
    evening = dt.datetime(2025, 4, 6, 2, 30, tzinfo=dt.UTC)  # 19:30 on April 5th in LA
    for timezone, day, status in (("America/Los_Angeles", DAY, "completed"),
                                  ("UTC", None, "active")):
        made, store = EventFactory(), FakeStore()
        batch = LoggerBatch(store, timezone=timezone)
        for event in (made.created(1), made.transfer(),
                      made.status(1, "active", "completed", at=evening)):
            batch.apply(event)
        assert store.log[(1, DAY)]["status"] == status
        assert batch.touched == {DAY} | ({day} if day else set())


def test_a_soft_delete_takes_the_tasks_rows_out_and_touches_their_days():
    made, store = EventFactory(), FakeStore()
    next_day = DAY + dt.timedelta(days=1)
    apply_all(store, [made.created(1), made.created(2), made.transfer(), made.transfer(next_day)])
    batch = apply_all(store, [made.soft_deleted(1)])
    assert set(store.log) == {(2, DAY), (2, next_day)}
    assert batch.touched == {DAY, next_day} and store.tasks[1]["deleted"]


def test_unknown_event_types_are_skipped_and_bad_ones_raise():
    made = EventFactory()
    store = FakeStore()
    apply_all(store, [made.event("TaskArchived", 1, {})])
    assert store.checkpoint == 1
    with pytest.raises(KeyError):
        LoggerBatch(store).apply(made.event("TaskCreated", 2, {}))


@dataclass
class RecordingDateCache:
    """A DateCache that notes what it is told, in order with the commits."""

    told: list[Any] = field(default_factory=list)
    broken: bool = False

    def changing(self, versions):
        if self.broken:
            raise redis.ConnectionError("down")
        self.told.append(("changing", dict(versions)))

    def changed(self, versions):
        self.told.append(("changed", dict(versions)))


def recorded_transactions(store: FakeStore, cache: RecordingDateCache):
    @contextmanager
    def transaction():
        yield store
        cache.told.append("commit")

    return transaction


def test_changed_days_are_withdrawn_before_the_commit_and_published_after_it():
    made, store, cache = EventFactory(), FakeStore(), RecordingDateCache()
    projection = LoggerProjection(recorded_transactions(store, cache), cache)
    with projection.batch() as batch:
        for event in (made.created(1), made.transfer()):
            batch.apply(event)
        assert cache.told == []
    assert cache.told == [("changing", {DAY: 1}), "commit", ("changed", {DAY: 1})]
    with projection.batch() as batch:
        batch.apply(made.created(2))  # changes no day: nothing to tell
    with pytest.raises(RuntimeError), projection.batch():
        raise RuntimeError("rolled back")
    assert cache.told == [("changing", {DAY: 1}), "commit", ("changed", {DAY: 1}), "commit"]


def test_a_batch_whose_days_cannot_be_withdrawn_does_not_commit():
    made, store, cache = EventFactory(), FakeStore(), RecordingDateCache(broken=True)
    projection = LoggerProjection(recorded_transactions(store, cache), cache)
    with pytest.raises(redis.ConnectionError), projection.batch() as batch:
        batch.apply(made.created(1))
        batch.apply(made.transfer())
    assert "commit" not in cache.told


@dataclass
class FakeReader:
    rows: list[dict[str, Any]]
    reads: int = 0

    def entries_page(self, day, filters, offset, limit):
        self.reads += 1
        return self.rows[offset:offset + limit], len(self.rows)


@dataclass
class FakeCache:
    values: dict[Any, Any] = field(default_factory=dict)
    generations: dict[dt.date, int] = field(default_factory=dict)
    broken: bool = False

    def lookup(self, day, page, per_page):
        if self.broken:
            raise redis.ConnectionError("down")
        generation = self.generations.get(day, 0)
        tagged = self.values.get((day, page, per_page))
        if tagged is None or tagged[0] != generation:
            return generation, None
        return generation, tagged[1]

    def store(self, day, page, per_page, generation, cached):
        self.values[(day, page, per_page)] = (generation, cached)


ROW = {"id": 1, "task_id": 1, "date": DAY,
       "transferred_at": dt.datetime(2025, 4, 5, 0, 5, tzinfo=dt.UTC)}


def test_a_day_is_read_once_then_served_from_cache_until_its_generation_moves():
    reader, cache = FakeReader([ROW]), FakeCache()
    first = queries.list_day(reader, cache, DAY, 1, 20)
    second = queries.list_day(reader, cache, DAY, 1, 20)
    assert (first.cache, second.cache, reader.reads) == ("MISS", "HIT", 1)
    assert second.items == [{"id": 1, "task_id": 1, "date": "2025-04-05",
                             "transferred_at": "2025-04-05T00:05:00Z"}]
    cache.generations[DAY] = 1
    assert queries.list_day(reader, cache, DAY, 1, 20).cache == "MISS"


def test_without_redis_the_database_answers():
    reader = FakeReader([ROW])
    result = queries.list_day(reader, FakeCache(broken=True), DAY, 1, 20)
    assert result.cache == "MISS" and result.total == 1


def test_created_events_from_the_stream_go_to_the_store_undecoded_others_are_decoded():
    from shared.events import encode

    store, events = FakeStore(), EventFactory()
    batch = LoggerBatch(store)
    first, second = encode(events.created(1)), encode(events.created(2))
    batch.apply_encoded(first, "1-0")
    batch.apply_encoded(second, "2-0")
    batch.apply_encoded(encode(events.soft_deleted(1)), "3-0")
    assert store.encoded == [[first, second]]  # flushed, in one call, before the delete
    with pytest.raises(ValueError):
        batch.apply_encoded("not json", "4-0")
