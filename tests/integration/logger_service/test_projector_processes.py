"""Real `taskstream projector` processes: one applier at a time, takeover, SIGKILL, SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess

import requests
from sqlalchemy import create_engine

from testbed.polling import wait_for
from tests.integration.logger_service.conftest import drain, messages, sql_consumer, table
from tests.integration.logger_service.test_projections import snapshot
from tests.unit.logger_service.factories import EventFactory


def is_active(process: subprocess.Popen) -> bool:
    return any("is now the active applier" in m for m in messages(process))


def applied(engine) -> int:
    return int(table(engine, "SELECT coalesce(max(last_seq), 0) FROM projection_checkpoints")
               [0][0])


def test_two_projectors_one_applies_and_the_other_takes_over(bus, engine, start_projector):
    events = EventFactory()
    first, second = start_projector("one"), start_projector("two")
    wait_for(lambda: is_active(first) or is_active(second))
    bus.publish([events.created(n) for n in range(1, 21)])
    wait_for(lambda: applied(engine) == 20)
    active, standby = (first, second) if is_active(first) else (second, first)
    assert not is_active(standby)
    active.send_signal(signal.SIGKILL)
    active.wait(timeout=10)
    bus.publish([events.created(n) for n in range(21, 31)] + [events.transfer()])
    wait_for(lambda: applied(engine) == 31, timeout=10)
    assert is_active(standby)
    assert table(engine, "SELECT count(*) FROM task_logger") == [(30,)]


def test_sigterm_finishes_and_exits(bus, engine, start_projector):
    events = EventFactory()
    process = start_projector("solo")
    bus.publish([events.created(1)])
    wait_for(lambda: applied(engine) == 1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert any("stopped" in m for m in messages(process))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_projector_serves_its_metrics(bus, engine, start_projector):
    events = EventFactory()
    port = free_port()
    start_projector("metered", PROJECTOR_METRICS_PORT=str(port))
    bus.publish([events.created(n) for n in range(1, 6)])
    wait_for(lambda: applied(engine) == 5)
    url = f"http://127.0.0.1:{port}/metrics"

    def scraped() -> str:
        try:
            return requests.get(url, timeout=2).text
        except requests.ConnectionError:
            return ""

    wait_for(lambda: "taskstream_projector_events_applied_total 5.0" in scraped())
    body = scraped()
    for name in ("taskstream_projector_lag_events", "taskstream_projector_lag_seconds",
                 "taskstream_projector_batch_seconds_bucket",
                 "taskstream_projector_dead_letters_total",
                 "taskstream_projector_dead_letter_entries"):
        assert name in body
    wait_for(lambda: "taskstream_projector_lag_events 0.0" in scraped())


def workload(events: EventFactory) -> list:
    """Creations, a transfer, changes after it, a purge: 3000+ events."""
    batch = [events.created(n) for n in range(1, 3001)]
    batch.append(events.transfer())
    batch += [events.status(n, "active", "completed") for n in range(1, 3001, 7)]
    batch += [events.purged(n) for n in range(2, 3001, 11)]
    return batch


def test_sigkill_mid_stream_then_restart_gives_the_tables_of_a_clean_run(
        bus, engine, start_projector, fresh_database):
    published = workload(EventFactory())
    bus.publish(published)
    victim = start_projector("victim", PROJECTOR_BATCH_SIZE="20")  # many batches to die in
    wait_for(lambda: applied(engine) > 0)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    assert applied(engine) < published[-1].seq, "the kill came too late to test anything"
    # restarted under the same name: re-reads its pending list
    start_projector("victim", PROJECTOR_BATCH_SIZE="20")
    wait_for(lambda: applied(engine) == published[-1].seq, timeout=30)

    clean_engine = create_engine(fresh_database("logger"))
    clean_bus = type(bus)(bus.client, f"{bus.stream}-clean")
    clean_bus.publish(published)
    drain(sql_consumer(clean_engine, clean_bus), limit=200)
    assert snapshot(engine) == snapshot(clean_engine)
    clean_engine.dispose()
