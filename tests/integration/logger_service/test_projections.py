"""What each event does to the projection tables, applied exactly once (real PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import logging

from services.logger_service.adapters.projection_store import sql_transaction
from services.logger_service.service_layer.projection import LoggerBatch
from tests.integration.logger_service.conftest import drain, table
from tests.unit.logger_service.factories import DAY

LATER = dt.datetime(2025, 4, 5, 15, 30, tzinfo=dt.UTC)
NEXT_DAY = dt.datetime(2025, 4, 6, 8, 0, tzinfo=dt.UTC)


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every projection table, without generated ids."""
    return {
        "state": table(engine, "SELECT task_id, title, status, priority, deleted, version "
                               "FROM task_state ORDER BY task_id"),
        "logger": table(engine, "SELECT task_id, title, status, date, transferred_at "
                                "FROM task_logger ORDER BY task_id, date"),
        "audit": table(engine, "SELECT event_id, task_id, previous_status, new_status, "
                               "modified_by FROM audit_log ORDER BY id"),
        "checkpoint": table(engine, "SELECT last_seq FROM projection_checkpoints"),
    }


def test_events_delivered_again_out_of_band_change_nothing(bus, engine, events, make_consumer):
    consumer = make_consumer()
    bus.publish([events.created(1), events.transfer(), events.status(1, "active", "completed")])
    drain(consumer)
    before = snapshot(engine)
    for _ in range(3):
        consumer.handle(bus.range(1, 3, 10))
    assert snapshot(engine) == before
    assert len(before["audit"]) == 1


def test_the_transfer_delivered_twice_makes_one_row_per_task(bus, engine, events,
                                                            make_consumer, caplog):
    caplog.set_level(logging.INFO, "taskstream.projector")
    consumer = make_consumer()
    bus.publish([events.created(1), events.created(2), events.transfer()])
    drain(consumer)
    bus.publish([events.transfer()])  # the same day requested again: a new event
    drain(consumer)
    consumer.handle(bus.range(3, 4, 10))
    assert table(engine, "SELECT task_id, date FROM task_logger ORDER BY task_id") == [
        (1, DAY), (2, DAY)]
    assert bus.dead_letter_count() == 0
    assert table(engine, "SELECT last_seq FROM projection_checkpoints") == [(4,)]
    messages = [r.getMessage() for r in caplog.records if "Transferred" in r.getMessage()]
    assert messages == ["Transferred 2 active tasks from TaskManager to TaskLogger",
                        "Transferred 0 active tasks from TaskManager to TaskLogger"]


def test_a_second_transfer_of_a_day_adds_the_tasks_active_since(bus, engine, events,
                                                                make_consumer, caplog):
    caplog.set_level(logging.INFO, "taskstream.projector")
    bus.publish([events.created(1), events.created(2, status="completed"), events.transfer(),
                 events.created(3), events.status(2, "completed", "in_progress"),
                 events.status(1, "active", "completed", at=LATER), events.transfer()])
    drain(make_consumer())
    assert table(engine, "SELECT task_id, date, status FROM task_logger ORDER BY task_id") == [
        (1, DAY, "completed"), (2, DAY, "in_progress"), (3, DAY, "active")]
    messages = [r.getMessage() for r in caplog.records if "Transferred" in r.getMessage()]
    assert messages == ["Transferred 1 active tasks from TaskManager to TaskLogger",
                        "Transferred 2 active tasks from TaskManager to TaskLogger"]


def test_a_change_in_the_evening_updates_the_row_of_that_day_in_the_transfer_zone(
        bus, engine, events, make_consumer):
    evening = dt.datetime(2025, 4, 6, 2, 30, tzinfo=dt.UTC)  # 19:30 on April 5th in LA
    bus.publish([events.created(1), events.created(2), events.transfer(),
                 events.transfer(NEXT_DAY.date()),
                 events.status(1, "active", "completed", at=evening),
                 events.updated(2, at=evening, title="Renamed")])
    drain(make_consumer(timezone="America/Los_Angeles"))
    assert table(engine, "SELECT task_id, date, title, status FROM task_logger "
                         "ORDER BY task_id, date") == [
        (1, DAY, "Task 1", "completed"), (1, NEXT_DAY.date(), "Task 1", "active"),
        (2, DAY, "Renamed", "active"), (2, NEXT_DAY.date(), "Task 2", "active")]


def test_a_soft_deleted_task_leaves_every_day_and_keeps_its_audit(bus, engine, events, cache,
                                                                  make_consumer):
    bus.publish([events.created(1), events.created(2), events.transfer(),
                 events.transfer(NEXT_DAY.date()), events.status(1, "active", "in_progress")])
    consumer = make_consumer()
    drain(consumer)
    generations = [cache.lookup(day, 1, 20)[0] for day in (DAY, NEXT_DAY.date())]
    bus.publish([events.soft_deleted(1)])
    drain(consumer)
    assert table(engine, "SELECT task_id, date FROM task_logger ORDER BY date") == [
        (2, DAY), (2, NEXT_DAY.date())]
    assert table(engine, "SELECT task_id, deleted FROM task_state ORDER BY task_id") == [
        (1, True), (2, False)]
    assert table(engine, "SELECT task_id, new_status FROM audit_log") == [(1, "in_progress")]
    assert [cache.lookup(day, 1, 20)[0] for day in (DAY, NEXT_DAY.date())] == [
        generation + 1 for generation in generations]


def test_a_change_after_the_transfer_shows_in_that_days_row_and_the_audit(
        bus, engine, events, make_consumer):
    bus.publish([events.created(1), events.created(2), events.transfer(),
                 events.status(1, "active", "completed", at=LATER),
                 events.updated(2, at=LATER, title="Renamed", priority="high"),
                 events.status(2, "active", "in_progress", at=NEXT_DAY)])
    drain(make_consumer())
    assert table(engine, "SELECT task_id, title, status, priority FROM task_logger "
                         "ORDER BY task_id") == [
        (1, "Task 1", "completed", "medium"), (2, "Renamed", "active", "high")]
    assert table(engine, "SELECT task_id, previous_status, new_status, modified_by "
                         "FROM audit_log ORDER BY id") == [
        (1, "active", "completed", "admin"), (2, "active", "in_progress", "admin")]
    assert table(engine, "SELECT status, title, version FROM task_state ORDER BY task_id") == [
        ("completed", "Task 1", 2), ("in_progress", "Renamed", 3)]


def test_a_status_change_by_update_is_audited_too(bus, engine, events, make_consumer):
    bus.publish([events.created(1), events.updated(1, status="in_progress", title="x")])
    drain(make_consumer())
    assert table(engine, "SELECT previous_status, new_status FROM audit_log") == [
        ("active", "in_progress")]


def test_purge_cascades_to_log_rows_and_audit(bus, engine, events, make_consumer):
    bus.publish([events.created(1), events.created(2), events.transfer(),
                 events.status(1, "active", "in_progress"), events.purged(1)])
    drain(make_consumer())
    assert table(engine, "SELECT task_id FROM task_state") == [(2,)]
    assert table(engine, "SELECT task_id FROM task_logger") == [(2,)]
    assert table(engine, "SELECT task_id FROM audit_log") == []


def test_soft_deleted_and_finished_tasks_are_not_transferred(bus, engine, events, make_consumer):
    bus.publish([events.created(1), events.created(2), events.created(3),
                 events.transfer(), events.soft_deleted(1),
                 events.status(2, "active", "cancelled"),
                 events.transfer(NEXT_DAY.date())])
    drain(make_consumer())
    assert table(engine, "SELECT task_id, date FROM task_logger ORDER BY date, task_id") == [
        (2, DAY), (3, DAY), (3, NEXT_DAY.date())]  # task 1's row of DAY left with it


def test_events_of_unknown_tasks_are_ignored(bus, engine, events, make_consumer):
    bus.publish([events.status(9, "active", "completed"), events.updated(9, title="x"),
                 events.soft_deleted(9), events.purged(9), events.created(1)])
    drain(make_consumer())
    assert table(engine, "SELECT task_id FROM task_state") == [(1,)]
    assert table(engine, "SELECT last_seq FROM projection_checkpoints") == [(5,)]


def test_a_poison_event_is_dead_lettered_and_the_next_ones_applied(bus, engine, events,
                                                                 make_consumer):
    consumer = make_consumer(max_deliveries=3)
    first = events.created(1)
    poison = events.event("TaskCreated", 2, {"description": "no title"})
    bus.publish([first, poison, events.created(3), events.transfer()])
    drain(consumer)
    assert table(engine, "SELECT task_id FROM task_logger ORDER BY task_id") == [(1,), (3,)]
    assert bus.dead_letter_count() == 1
    dead = bus.client.xrange(bus.dead_stream)
    assert dead[0][1][b"entry_id"] == b"2-0" and dead[0][1][b"deliveries"] == b"3"
    assert b"title" in dead[0][1][b"error"]
    assert bus.group_info("logger").pending == 0


def test_an_audit_entry_applied_twice_outside_the_checkpoint_is_recorded_once(
        bus, engine, events, make_consumer):
    created = events.created(1)
    done = events.status(1, "active", "completed")
    reopened = events.status(1, "completed", "active")
    bus.publish([created, done, reopened])
    drain(make_consumer())
    with sql_transaction(engine)() as store:  # applied again past the checkpoint's guard
        LoggerBatch(store).apply(done)
    assert table(engine, "SELECT event_id, new_status FROM audit_log ORDER BY id") == [
        (done.event_id, "completed"), (reopened.event_id, "active")]
