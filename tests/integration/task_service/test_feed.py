"""`GET /events`: the event log after a position, in order, from the event store."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from services.task_service.adapters.stored_events import StoredEvents
from services.task_service.service_layer.feed import WaitSlots
from shared.events import parse_json
from shared.http import DEPENDENCIES
from testbed.polling import wait_for
from testbed.tokens import TokenFactory


@pytest.fixture
def feed(tokens: TokenFactory) -> dict[str, str]:
    """A service account's headers: it may read the feed."""
    return tokens.headers(role="service")


def created(client: FlaskClient, tokens: TokenFactory, count: int) -> None:
    """Create `count` tasks."""
    for number in range(count):
        response = client.post("/task", json={"title": f"t{number}"}, headers=tokens.headers())
        assert response.status_code == 201


def test_pages_of_the_log_in_order_each_resuming_at_next(
        client: FlaskClient, tokens: TokenFactory, feed: dict[str, str], engine: Engine) -> None:
    created(client, tokens, 7)
    seen: list[int] = []
    after = 0
    while True:
        page = client.get(f"/events?after={after}&limit=3", headers=feed)
        assert page.status_code == 200, page.get_json()
        body = page.get_json()
        assert list(body) == ["events", "next"] and len(body["events"]) <= 3
        if not body["events"]:
            assert body["next"] == after
            break
        seen += [event["seq"] for event in body["events"]]
        after = body["next"]
        assert after == body["events"][-1]["seq"]
    assert seen == list(range(1, 8))
    stored = StoredEvents(engine).read(0, 100)
    everything = client.get("/events", headers=feed).get_json()["events"]
    assert everything == [parse_json(payload) for _seq, payload in stored]


def test_the_default_page_is_100_and_at_most_1000(
        client: FlaskClient, tokens: TokenFactory, feed: dict[str, str]) -> None:
    client.post("/upload-csv", data="title\n" + "x\n" * 1001, content_type="text/csv",
                headers=tokens.headers(role="admin"))
    assert len(client.get("/events", headers=feed).get_json()["events"]) == 100
    most = client.get("/events?limit=1000&after=1", headers=feed).get_json()
    assert (len(most["events"]), most["next"]) == (1000, 1001)


@pytest.mark.parametrize("query, message", [
    ("after=-1", "Invalid after, expected a position of the event log (an integer from 0)"),
    ("after=x", "Invalid after, expected a position of the event log (an integer from 0)"),
    ("limit=0", "Invalid limit, expected an integer from 1 to 1000"),
    ("limit=1001", "Invalid limit, expected an integer from 1 to 1000"),
    ("wait=31", "Invalid wait, expected seconds from 0 to 30"),
    ("wait=-1", "Invalid wait, expected seconds from 0 to 30"),
    ("wait=soon", "Invalid wait, expected seconds from 0 to 30"),
    ("wait=nan", "Invalid wait, expected seconds from 0 to 30"),
])
def test_bad_parameters_are_400s_naming_them(client: FlaskClient, feed: dict[str, str],
                                             query: str, message: str) -> None:
    response = client.get(f"/events?{query}", headers=feed)
    assert (response.status_code, response.get_json()["error"]) == (400, message)


def test_a_waiting_read_answers_as_soon_as_an_event_is_committed(
        client: FlaskClient, tokens: TokenFactory, feed: dict[str, str]) -> None:
    created(client, tokens, 1)
    reader = client.application.test_client()  # the same app; the read holds this client
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(reader.get, "/events?after=1&wait=30", headers=feed)
        wait_for(lambda: _waiting_reads(client) == 1 or waiting.done(),
                 what="the read to wait")
        assert not waiting.done()
        created(client, tokens, 1)
        response = waiting.result(timeout=30)
    assert [event["seq"] for event in response.get_json()["events"]] == [2]


def _waiting_reads(client: FlaskClient) -> int:
    """How many feed reads of the app wait (the wait slots taken)."""
    slots: WaitSlots = client.application.extensions[DEPENDENCIES].feed_slots
    return slots.taken()


def test_a_wait_with_nothing_new_answers_empty_at_the_same_position(
        client: FlaskClient, tokens: TokenFactory, feed: dict[str, str]) -> None:
    created(client, tokens, 2)
    response = client.get("/events?after=2&wait=0.2", headers=feed)
    assert response.get_json() == {"events": [], "next": 2}


def test_reads_beyond_the_wait_slots_answer_at_once(
        tokens: TokenFactory, feed: dict[str, str], make_app) -> None:
    app = make_app(feed_max_waiting=1)
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(app.test_client().get, "/events?wait=30", headers=feed)
        wait_for(lambda: _waiting_reads(app.test_client()) == 1 or held.done(),
                 what="the first read to take the only slot")
        second = app.test_client().get("/events?wait=30", headers=feed)
        assert second.get_json() == {"events": [], "next": 0} and not held.done()
        created(app.test_client(), tokens, 1)  # lets the first read answer
        assert [e["seq"] for e in held.result(timeout=30).get_json()["events"]] == [1]
    assert _waiting_reads(app.test_client()) == 0


@pytest.mark.parametrize("role, status", [("member", 403), ("manager", 403), ("admin", 200),
                                          ("service", 200)])
def test_events_read_is_for_admins_and_service_accounts(
        client: FlaskClient, tokens: TokenFactory, role: str, status: int) -> None:
    response = client.get("/events", headers=tokens.headers(role=role))
    assert response.status_code == status
    if status == 403:
        assert response.get_json() == {"error": "Forbidden"}
    assert client.get("/events").status_code == 401
