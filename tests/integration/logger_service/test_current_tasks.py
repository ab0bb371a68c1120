"""The current tasks over the real replica: filters, search, sort, pages, ETags, deletions."""

from __future__ import annotations

import datetime as dt

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Select, text
from sqlalchemy.engine import Connection, Engine

from services.logger_service.adapters.read_models import current_tasks_query
from services.logger_service.service_layer.filters import SORT_FIELDS, TaskFilter, TaskOrder
from shared.events import EventEnvelope
from tests.integration.logger_service.conftest import TOKENS, drain, member
from tests.unit.logger_service.factories import DAY, EventFactory

START = dt.datetime(2025, 4, 1, 8, 0, tzinfo=dt.UTC)

# id: title, description, status, priority, due date, creator
KNOWN = {
    1: ("Write the quarterly report", "Figures from the finance export", "active", "high",
        "2025-04-30", 7),
    2: ("Book the venue", "For the spring offsite", "in_progress", "medium", "2025-04-10", 7),
    3: ("Reports archive", "Move old reporting files", "completed", "low", None, 8),
    4: ("Call the plumber", None, "active", "low", "2025-04-02", 8),
    5: ("Plan the offsite agenda", "Talks and a report of last year", "cancelled", "high",
        "2025-05-15", 9),
    6: ("Renew the domain", "Expires soon", "active", "medium", "2025-04-10", 9),
}


def created(events: EventFactory, task_id: int) -> EventEnvelope:
    """The TaskCreated of a known task, each created an hour after the one before."""
    title, description, status, priority, due, creator = KNOWN[task_id]
    return events.event("TaskCreated", task_id, {
        "title": title, "description": description, "status": status, "priority": priority,
        "due_date": due, "created_by": creator}, at=START + dt.timedelta(hours=task_id))


@pytest.fixture
def known(bus, events, make_consumer) -> EventFactory:
    """The known tasks projected; then task 2 renamed last (so it was updated last)."""
    bus.publish([created(events, task_id) for task_id in KNOWN])
    bus.publish([events.updated(2, at=START + dt.timedelta(days=1), title="Book the hall")])
    drain(make_consumer())
    return events


def ids(client: FlaskClient, query: str = "") -> list[int]:
    """The ids a list of current tasks answers with, in order (one page of up to 100)."""
    response = client.get(f"/tasks/current?per_page=100&{query}", headers=member())
    assert response.status_code == 200, response.get_json()
    assert response.headers["X-Total-Count"] == str(len(response.get_json()))
    return [task["id"] for task in response.get_json()]


@pytest.mark.parametrize("query, expected", [
    ("", [6, 5, 4, 3, 2, 1]),
    ("status=active", [6, 4, 1]),
    ("status=active,in_progress", [6, 4, 2, 1]),
    ("priority=high", [5, 1]),
    ("priority=low,medium&status=active", [6, 4]),
    ("created_by=8", [4, 3]),
    ("due_from=2025-04-10", [6, 5, 2, 1]),
    ("due_to=2025-04-10", [6, 4, 2]),
    ("due_from=2025-04-10&due_to=2025-04-10", [6, 2]),
    ("q=report", [5, 3, 1]),  # stemmed: report, reports, reporting
    ("q=offsite", [5, 2]),
    ("q=\"quarterly report\"", [1]),
    ("q=report -offsite", [3, 1]),
    ("q=hall", [2]),  # the title as renamed
    ("q=venue", []),  # the old title is gone
    ("q=report&status=completed,cancelled&created_by=9", [5]),
])
def test_filters_and_search(client: FlaskClient, known: EventFactory, query: str,
                            expected: list[int]) -> None:
    assert ids(client, query) == expected


@pytest.mark.parametrize("query, expected", [
    ("sort=created_at&order=asc", [1, 2, 3, 4, 5, 6]),
    ("sort=created_at", [6, 5, 4, 3, 2, 1]),
    ("sort=updated_at", [2, 6, 5, 4, 3, 1]),
    ("sort=updated_at&order=asc", [1, 3, 4, 5, 6, 2]),
    ("sort=due_date&order=asc", [4, 2, 6, 1, 5, 3]),  # no due date: after every dated one
    ("sort=due_date&order=desc", [3, 5, 1, 6, 2, 4]),
    ("sort=priority&order=asc", [3, 4, 2, 6, 1, 5]),  # low < medium < high, then by id
    ("sort=priority&order=desc", [5, 1, 6, 2, 4, 3]),
])
def test_sorted_either_way_with_the_id_breaking_ties(client: FlaskClient, known: EventFactory,
                                                     query: str, expected: list[int]) -> None:
    assert ids(client, query) == expected


def test_pages_with_links_keep_the_filters(client: FlaskClient, known: EventFactory) -> None:
    response = client.get("/tasks/current?status=active&sort=due_date&order=asc&per_page=2"
                          "&page=2", headers=member())
    assert [task["id"] for task in response.get_json()] == [1]
    assert response.headers["X-Total-Count"] == "3"
    assert response.headers["Link"] == (
        '</tasks/current?status=active&sort=due_date&order=asc&page=1&per_page=2>; '
        'rel="first", </tasks/current?status=active&sort=due_date&order=asc&page=1'
        '&per_page=2>; rel="prev", </tasks/current?status=active&sort=due_date&order=asc'
        '&page=2&per_page=2>; rel="last"')


def test_one_task_as_it_is_now_with_its_etag(client: FlaskClient, known: EventFactory) -> None:
    response = client.get("/tasks/current/2", headers=member())
    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'
    assert response.get_json() == {
        "id": 2, "title": "Book the hall", "description": "For the spring offsite",
        "status": "in_progress", "priority": "medium", "due_date": "2025-04-10",
        "created_by": 7, "created_at": "2025-04-01T10:00:00Z",
        "updated_at": "2025-04-02T08:00:00Z", "version": 2}
    listed = client.get("/tasks/current?q=hall", headers=member()).get_json()
    assert listed == [response.get_json()]


def test_if_none_match_with_the_current_version_is_304(client: FlaskClient, bus,
                                                       known: EventFactory, make_consumer
                                                       ) -> None:
    held = {**member(), "If-None-Match": '"2"'}
    not_modified = client.get("/tasks/current/2", headers=held)
    assert not_modified.status_code == 304 and not_modified.data == b""
    assert not_modified.headers["ETag"] == '"2"'
    for other in ('"1"', 'W/"1", "7"'):
        assert client.get("/tasks/current/2", headers={**member(), "If-None-Match": other}
                          ).status_code == 200
    bus.publish([known.status(2, "in_progress", "completed")])
    drain(make_consumer())
    changed = client.get("/tasks/current/2", headers=held)
    assert changed.status_code == 200 and changed.headers["ETag"] == '"3"'


def test_a_deleted_task_is_absent_everywhere(client: FlaskClient, bus, known: EventFactory,
                                             make_consumer) -> None:
    bus.publish([known.transfer(DAY), known.soft_deleted(1), known.purged(4)])
    drain(make_consumer())
    for task_id in (1, 4):
        gone = client.get(f"/tasks/current/{task_id}", headers=member())
        assert (gone.status_code, gone.get_json()) == (404, {"error": "Task not found"})
        gone_held = client.get(f"/tasks/current/{task_id}",
                               headers={**member(), "If-None-Match": "*"})
        assert gone_held.status_code == 404
    for query in ("", "status=active", "q=report", "priority=high", "created_by=8",
                  "sort=due_date", "due_from=2025-04-01"):
        assert not {1, 4} & set(ids(client, query)), query
    logged = client.get("/tasks?q=report", headers=member()).get_json()
    assert [entry["task_id"] for entry in logged] == []  # task 1, the only one transferred


def test_an_unknown_task_is_404(client: FlaskClient, known: EventFactory) -> None:
    response = client.get("/tasks/current/99", headers=member())
    assert (response.status_code, response.get_json()) == (404, {"error": "Task not found"})


def test_the_task_logger_takes_the_same_filters_with_or_without_a_date(
        client: FlaskClient, bus, known: EventFactory, make_consumer) -> None:
    bus.publish([known.transfer(DAY)])  # tasks 1, 2, 4, 6: active or in progress
    bus.publish([known.transfer(DAY + dt.timedelta(days=1))])
    drain(make_consumer())
    day = f"date={DAY.isoformat()}"

    def logged(query: str) -> list[tuple[str, int]]:
        response = client.get(f"/tasks?{query}", headers=member())
        assert response.status_code == 200, response.get_json()
        assert "X-Cache" not in response.headers
        assert response.headers["X-Total-Count"] == str(len(response.get_json()))
        return [(entry["date"], entry["task_id"]) for entry in response.get_json()]

    assert logged(f"{day}&status=active") == [("2025-04-05", 1), ("2025-04-05", 4),
                                             ("2025-04-05", 6)]
    assert logged(f"{day}&priority=medium&status=in_progress") == [("2025-04-05", 2)]
    assert logged("q=report") == [("2025-04-06", 1), ("2025-04-05", 1)]
    assert logged("q=hall&priority=medium") == [("2025-04-06", 2), ("2025-04-05", 2)]
    unfiltered = client.get(f"/tasks?{day}", headers=member())
    assert unfiltered.headers["X-Cache"] == "MISS" and len(unfiltered.get_json()) == 4


@pytest.mark.parametrize("query, message", [
    ("status=done", "Invalid status, expected one or more of active, in_progress, completed, "
                    "cancelled (comma-separated)"),
    ("status=active,", "Invalid status, expected one or more of active, in_progress, "
                       "completed, cancelled (comma-separated)"),
    ("priority=urgent", "Invalid priority, expected one or more of low, medium, high "
                        "(comma-separated)"),
    ("created_by=0", "Invalid created_by, expected a user id (a positive integer)"),
    ("created_by=ann", "Invalid created_by, expected a user id (a positive integer)"),
    ("due_from=2025-02-30", "Invalid due_from format, expected YYYY-MM-DD"),
    ("due_to=tomorrow", "Invalid due_to format, expected YYYY-MM-DD"),
    ("due_from=2025-05-01&due_to=2025-04-01", "Invalid due_from, it must not be after due_to"),
    ("q=", "Invalid q, expected 1 to 200 characters of text to search for"),
    ("q=" + "x" * 201, "Invalid q, expected 1 to 200 characters of text to search for"),
    ("sort=title", "Invalid sort, expected one of due_date, priority, created_at, updated_at"),
    ("order=up", "Invalid order, expected asc or desc"),
    ("per_page=101", "Invalid per_page, expected an integer from 1 to 100"),
])
def test_bad_filter_values_are_400s_naming_the_parameter(client: FlaskClient, query: str,
                                                          message: str) -> None:
    response = client.get(f"/tasks/current?{query}", headers=member())
    assert (response.status_code, response.get_json()["error"]) == (400, message)
    if not query.startswith(("created_by", "due_", "sort", "order")):
        logged = client.get(f"/tasks?{query}", headers=member())
        assert (logged.status_code, logged.get_json()["error"]) == (400, message)


def test_search_that_is_only_stop_words_or_symbols_finds_nothing_and_is_no_error(
        client: FlaskClient, known: EventFactory) -> None:
    for query in ("q=the", "q=%22%22", "q=-", "q=%27%3B%20drop%20table", "q=a%20%7C%20b"):
        assert ids(client, query) == [], query


def test_reading_the_current_tasks_needs_task_read(client: FlaskClient) -> None:
    assert client.get("/tasks/current").status_code == 401
    assert client.get("/tasks/current/1").status_code == 401
    stranger = TOKENS.headers(role="nobody")
    assert client.get("/tasks/current", headers=stranger).status_code == 403


def explained(connection: Connection, query: Select, *settings: str) -> str:
    """The plan PostgreSQL makes for a query under the given planner settings."""
    for setting in settings:
        connection.execute(text(f"SET LOCAL {setting} = off"))
    compiled = query.compile(dialect=connection.dialect,
                             compile_kwargs={"render_postcompile": True})
    plan = "\n".join(connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).scalars())
    connection.rollback()
    return plan


@pytest.mark.parametrize("field", SORT_FIELDS)
@pytest.mark.parametrize("descending", [False, True])
def test_every_sort_walks_its_index(engine: Engine, known: EventFactory, field: str,
                                    descending: bool) -> None:
    """A sorted page is read in order from the index built on the same expression (no sort of
    every task once the replica is large)."""
    with engine.connect() as connection:
        plan = explained(connection, current_tasks_query(TaskFilter(), TaskOrder(
            field, descending)), "enable_seqscan", "enable_sort")
    assert f" ix_task_state_{field} on task_state" in plan, plan


def test_the_search_uses_its_index(engine: Engine, known: EventFactory) -> None:
    """The search builds the very expression its index is made of."""
    with engine.connect() as connection:
        plan = explained(connection, current_tasks_query(TaskFilter(text="report"),
                                                         TaskOrder()),
                         "enable_seqscan", "enable_indexscan", "enable_indexonlyscan")
    assert " ix_task_state_search" in plan, plan


@pytest.mark.parametrize("descending", [False, True])
def test_sorting_by_priority_within_a_priority_filter_starts_the_walk_at_those_priorities(
        client: FlaskClient, engine: Engine, known: EventFactory, descending: bool) -> None:
    """Not a walk past every other priority's tasks to reach them (a million tasks: 0.5 s)."""
    order = "desc" if descending else "asc"
    expected = [5, 1, 4, 3] if descending else [3, 4, 1, 5]
    assert ids(client, f"priority=low,high&sort=priority&order={order}") == expected
    with engine.connect() as connection:
        plan = explained(connection, current_tasks_query(
            TaskFilter(priorities=("low",)), TaskOrder("priority", descending)),
            "enable_seqscan", "enable_sort")
    assert " ix_task_state_priority on task_state" in plan, plan
    assert "Index Cond" in plan.split("ix_task_state_priority", 1)[1], plan
