"""The read API over real projections: pages, links, the date cache, errors."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.integration.logger_service.conftest import TOKENS, drain, member
from tests.statements import recorded_statements
from tests.unit.logger_service.factories import DAY


def test_a_day_of_transferred_tasks(client, bus, events, make_consumer):
    bus.publish([events.created(1, title="Write"), events.created(2), events.transfer()])
    drain(make_consumer())
    response = client.get(f"/tasks?date={DAY.isoformat()}", headers=member())
    assert response.status_code == 200
    body = response.get_json()
    assert [entry["task_id"] for entry in body] == [1, 2]
    assert set(body[0]) == {"id", "task_id", "title", "description", "status", "priority",
                            "date", "transferred_at"}
    assert body[0]["title"] == "Write" and body[0]["date"] == "2025-04-05"
    assert body[0]["transferred_at"] == "2025-04-05T09:00:00Z"
    assert response.headers["X-Total-Count"] == "2"


def test_the_date_cache_misses_hits_and_sees_projected_changes(client, bus, events,
                                                                make_consumer):
    consumer = make_consumer()
    bus.publish([events.created(1), events.transfer()])
    drain(consumer)
    url = f"/tasks?date={DAY.isoformat()}"
    first = client.get(url, headers=member())
    second = client.get(url, headers=member())
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert second.get_json() == first.get_json()
    bus.publish([events.status(1, "active", "completed")])
    drain(consumer)
    third = client.get(url, headers=member())
    assert third.headers["X-Cache"] == "MISS"
    assert third.get_json()[0]["status"] == "completed"


def test_a_transfer_into_a_cached_day_makes_the_next_read_a_miss_with_the_new_rows(
        client, bus, events, make_consumer):
    consumer = make_consumer()
    bus.publish([events.created(1), events.transfer()])
    drain(consumer)
    url = f"/tasks?date={DAY.isoformat()}"
    client.get(url, headers=member())
    assert client.get(url, headers=member()).headers["X-Cache"] == "HIT"
    bus.publish([events.created(2), events.transfer()])  # a second transfer of the day
    drain(consumer)
    after = client.get(url, headers=member())
    assert after.headers["X-Cache"] == "MISS"
    assert [entry["task_id"] for entry in after.get_json()] == [1, 2]
    assert after.headers["X-Total-Count"] == "2"


def test_a_soft_deleted_task_is_gone_from_every_read_but_the_audit(client, bus, events,
                                                                   make_consumer):
    consumer = make_consumer()
    bus.publish([events.created(1), events.created(2), events.status(1, "active", "in_progress"),
                 events.transfer(), events.transfer(DAY.replace(day=6))])
    drain(consumer)
    day_url = f"/tasks?date={DAY.isoformat()}"
    client.get(day_url, headers=member())  # cached with task 1 in it
    entry_ids = [e["id"] for e in client.get("/tasks", headers=member()).get_json()
                 if e["task_id"] == 1]
    bus.publish([events.soft_deleted(1)])
    drain(consumer)
    for url in (day_url, f"{day_url}&per_page=5", "/tasks", "/tasks?date=2025-04-06"):
        page = client.get(url, headers=member())
        assert [e["task_id"] for e in page.get_json()] == [2] * len(page.get_json()), url
        assert page.headers["X-Total-Count"] == ("2" if url == "/tasks" else "1"), url
    assert client.get(day_url, headers=member()).headers["X-Cache"] == "HIT"  # re-cached
    assert len(entry_ids) == 2
    for entry_id in entry_ids:
        gone = client.get(f"/task/{entry_id}", headers=member())
        assert gone.status_code == 404
        assert gone.get_json() == {"error": "Task log entry not found"}
    audit = client.get("/audit?task_id=1", headers=TOKENS.headers(role="admin"))
    assert [(a["previous_status"], a["new_status"]) for a in audit.get_json()] == [
        ("active", "in_progress")]


def test_one_entry_and_an_unknown_one(client, bus, events, make_consumer):
    bus.publish([events.created(1), events.transfer()])
    drain(make_consumer())
    entry_id = client.get("/tasks", headers=member()).get_json()[0]["id"]
    found = client.get(f"/task/{entry_id}", headers=member())
    assert found.status_code == 200 and found.get_json()["task_id"] == 1
    missing = client.get(f"/task/{entry_id + 1000}", headers=member())
    assert missing.status_code == 404
    assert missing.get_json() == {"error": "Task log entry not found"}


@pytest.mark.parametrize("query, message", [
    ("date=2025-13-01", "Invalid date format, expected YYYY-MM-DD"),
    ("date=05-04-2025", "Invalid date format, expected YYYY-MM-DD"),
    ("date=", "Invalid date format, expected YYYY-MM-DD"),
    ("page=0", "Invalid page, expected an integer from 1 to 10000000"),
    ("page=abc", "Invalid page, expected an integer from 1 to 10000000"),
    ("per_page=101", "Invalid per_page, expected an integer from 1 to 100"),
    ("per_page=-5", "Invalid per_page, expected an integer from 1 to 100"),
    ("per_page=1.5", "Invalid per_page, expected an integer from 1 to 100"),
])
def test_bad_query_values_are_400s(client, query, message):
    response = client.get(f"/tasks?{query}", headers=member())
    assert response.status_code == 400
    assert response.get_json()["error"] == message


BEYOND_BIGINT = ["99999999999999999999", "9223372036854775808"]


@pytest.mark.parametrize("entry_id", [*BEYOND_BIGINT, "0"])
def test_an_entry_id_outside_bigint_is_404_without_a_query(
        client: FlaskClient, engine: Engine, entry_id: str) -> None:
    with recorded_statements(engine) as sent:
        response = client.get(f"/task/{entry_id}", headers=member())
    assert (response.status_code, response.get_json()) == (404, {"error": "Not found"})
    assert sent == []


@pytest.mark.parametrize("task_id", [*BEYOND_BIGINT, "0", "1" * 5000])
def test_an_audit_task_id_outside_bigint_is_400_naming_it_without_a_query(
        client: FlaskClient, engine: Engine, task_id: str) -> None:
    with recorded_statements(engine) as sent:
        response = client.get(f"/audit?task_id={task_id}", headers=TOKENS.headers())
    assert response.status_code == 400
    assert response.get_json()["error"] == "Invalid task_id, expected a positive integer"
    assert sent == []


def test_the_largest_bigint_is_an_ordinary_lookup(client: FlaskClient) -> None:
    largest = "9223372036854775807"
    response = client.get(f"/task/{largest}", headers=member())
    assert (response.status_code, response.get_json()) == (
        404, {"error": "Task log entry not found"})
    audit = client.get(f"/audit?task_id={largest}", headers=TOKENS.headers())
    assert (audit.status_code, audit.get_json()) == (200, [])


def test_pages_newest_day_first_with_links(client, engine, bus, events, make_consumer):
    consumer = make_consumer()
    bus.publish([events.created(n) for n in range(1, 6)] + [events.transfer(DAY)])
    bus.publish([events.transfer(DAY.replace(day=6))])
    drain(consumer)
    response = client.get("/tasks?page=2&per_page=4", headers=member())
    assert response.status_code == 200
    body = response.get_json()
    assert response.headers["X-Total-Count"] == "10"
    assert [(e["date"], e["task_id"]) for e in body] == [
        ("2025-04-06", 5), ("2025-04-05", 1), ("2025-04-05", 2), ("2025-04-05", 3)]
    assert response.headers["Link"] == (
        '</tasks?page=1&per_page=4>; rel="first", </tasks?page=1&per_page=4>; rel="prev", '
        '</tasks?page=3&per_page=4>; rel="next", </tasks?page=3&per_page=4>; rel="last"')
    first = client.get("/tasks?per_page=4", headers=member()).get_json()
    assert [e["date"] for e in first] == ["2025-04-06"] * 4
    last = client.get("/tasks?page=3&per_page=4", headers=member())
    assert len(last.get_json()) == 2 and 'rel="next"' not in last.headers["Link"]
    beyond = client.get("/tasks?page=9&per_page=4", headers=member())
    assert beyond.status_code == 200 and beyond.get_json() == []
    assert '</tasks?page=3&per_page=4>; rel="prev"' in beyond.headers["Link"]


def test_an_empty_log_is_an_empty_page(client):
    response = client.get("/tasks?date=2030-01-01", headers=member())
    assert response.status_code == 200 and response.get_json() == []
    assert response.headers["X-Total-Count"] == "0"
    assert response.headers["Link"] == (
        '</tasks?date=2030-01-01&page=1&per_page=20>; rel="first", '
        '</tasks?date=2030-01-01&page=1&per_page=20>; rel="last"')


def test_reading_needs_a_token_and_the_audit_needs_audit_read(client):
    assert client.get("/tasks").status_code == 401
    assert client.get("/tasks").get_json() == {"error": "Authentication required"}
    forbidden = client.get("/audit", headers=TOKENS.headers(role="manager"))
    assert forbidden.status_code == 403 and forbidden.get_json() == {"error": "Forbidden"}


def test_the_audit_of_a_task(client, bus, events, make_consumer):
    bus.publish([events.created(1), events.created(2), events.status(1, "active", "in_progress"),
                 events.status(2, "active", "cancelled"),
                 events.status(1, "in_progress", "completed")])
    drain(make_consumer())
    response = client.get("/audit?task_id=1", headers=TOKENS.headers(role="admin"))
    assert response.status_code == 200
    assert response.get_json() == [
        {"task_id": 1, "previous_status": "active", "new_status": "in_progress",
         "modified_by": "admin", "timestamp": "2025-04-05T09:00:00Z"},
        {"task_id": 1, "previous_status": "in_progress", "new_status": "completed",
         "modified_by": "admin", "timestamp": "2025-04-05T09:00:00Z"},
    ]
    assert client.get("/audit", headers=TOKENS.headers()).headers["X-Total-Count"] == "3"


def test_a_date_page_reads_the_date_index(engine):
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO task_state (task_id, title, status, priority, version, updated_at) "
            "SELECT n, 't' || n, 'active', 'medium', 1, now() FROM generate_series(1, 2000) n"))
        connection.execute(text(
            "INSERT INTO task_logger (task_id, title, status, priority, date, transferred_at) "
            "SELECT task_id, title, status, priority, DATE '2025-01-01' + d, now() "
            "FROM task_state, generate_series(0, 29) d"))
        connection.execute(text("ANALYZE task_logger"))
        plan = "\n".join(connection.execute(text(
            "EXPLAIN SELECT * FROM task_logger WHERE date = DATE '2025-01-15' "
            "ORDER BY date DESC, id LIMIT 20 OFFSET 40")).scalars())
    assert "ix_task_logger_date" in plan
    assert "Seq Scan" not in plan


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"


def test_cache_hits_and_misses_are_counted_in_metrics(client, bus, events, make_consumer):
    bus.publish([events.created(1), events.transfer()])
    drain(make_consumer())

    def count(result: str) -> float:
        for line in client.get("/metrics").get_data(as_text=True).splitlines():
            if line.startswith(f'taskstream_cache_requests_total{{result="{result}"}}'):
                return float(line.split()[-1])
        return 0.0

    hits, misses = count("hit"), count("miss")
    url = f"/tasks?date={DAY.isoformat()}"
    for _ in range(3):
        client.get(url, headers=member())
    assert (count("hit") - hits, count("miss") - misses) == (2, 1)


def test_a_page_number_too_large_for_an_offset_is_a_400(client: FlaskClient) -> None:
    for path in ("/tasks?page=62617730822894256128&per_page=26",
                 "/tasks?date=2024-01-01&page=10000001", "/audit?page=1753083280358712320"):
        response = client.get(path, headers=TOKENS.headers())
        assert response.status_code == 400, path
        assert response.get_json()["error"].startswith("Invalid page"), path
