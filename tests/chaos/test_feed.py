"""`GET /events` follows the event store, not the stream: a client following the log through
the gateway sees every event exactly once, in order, while the relay and the projector are
killed and Redis loses everything."""

from __future__ import annotations

import threading
from collections.abc import Callable

import requests

from testbed.polling import wait_for
from testbed.processes import ChaosStack


class FeedClient:
    """A consumer in a thread of its own: it asks for the events after the last one it saw
    (long-polling), keeps every seq it was given and counts the answers that were errors."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.base_url, self.headers = base_url, headers
        self.seqs: list[int] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.follow, daemon=True)

    def follow(self) -> None:
        """Read the feed until told to stop."""
        session, after = requests.Session(), 0
        while not self.stopping.is_set():
            try:
                page = session.get(f"{self.base_url}/events", headers=self.headers, timeout=40,
                                   params={"after": after, "limit": 37, "wait": 1})
            except requests.RequestException as exc:
                self.errors.append(repr(exc))
                continue
            if page.status_code != 200:
                self.errors.append(f"{page.status_code} {page.text}")
                continue
            self.seqs += [event["seq"] for event in page.json()["events"]]
            after = page.json()["next"]

    def last(self) -> int:
        """The last seq it saw (0 before any)."""
        return self.seqs[-1] if self.seqs else 0


def store_head(chaos: ChaosStack) -> int:
    """The highest seq in the event store."""
    return chaos.scalar("tasks", "SELECT coalesce(max(seq), 0) FROM events")


def test_a_feed_client_sees_every_event_once_in_order_through_kills_and_a_flush(
        chaos: ChaosStack) -> None:
    base, admin = chaos.stack.base_url, chaos.stack.login()
    client = FeedClient(base, admin)
    client.thread.start()

    def created_while(fault: str, undo: Callable[[], None] | None) -> None:
        """Create tasks with the system so hurt; the client must see them before it heals."""
        for number in range(15):
            reply = chaos.stack.session.post(f"{base}/task", headers=admin, timeout=30,
                                             json={"title": f"{fault} {number}"})
            assert reply.status_code == 201, reply.text
        head = store_head(chaos)
        wait_for(lambda: client.last() >= head, 60, what=f"the feed to reach {head} ({fault})")
        if undo:
            undo()

    created_while("before", None)
    chaos.kill("relay")
    created_while("relay killed", lambda: chaos.start("relay"))
    chaos.kill("projector")
    created_while("projector killed", lambda: chaos.start("projector"))
    chaos.flush_redis()
    created_while("redis flushed", None)
    client.stopping.set()
    client.thread.join(60)
    assert client.seqs == list(range(1, store_head(chaos) + 1))
    assert client.errors == []
