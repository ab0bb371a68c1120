"""Webhooks through the whole system: commands through the gateway, the relay, the stream and
the `webhooks` process, to a receiver on loopback that checks every signature with the
Standard Webhooks reference library (testbed.receiver).

The receiver down for 30 s under a stream of commands loses nothing and keeps each task's
order; the relay, the projector and the `webhooks` process SIGKILLed mid-delivery lose
nothing, and what is delivered twice carries the same `webhook-id`; SIGTERM lets the
deliveries in hand finish. The process's /metrics follow along.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from testbed.polling import wait_for
from testbed.processes import MANAGED, ChaosStack, chaos_stack
from testbed.receiver import Received, Receiver
from tests.chaos.checks import StoredEvent, stored_events
from tests.chaos.test_graceful import backlog, exactly_once_everywhere

# Loopback receivers allowed; quick retries, and a crashed sender's leases that run out soon.
WEBHOOKS_ENV = {
    "WEBHOOKS_ALLOW_PRIVATE": "true",
    "WEBHOOKS_RETRY_BASE_SECONDS": "0.2",
    "WEBHOOKS_RETRY_MAX_DELAY_SECONDS": "2",
    "WEBHOOKS_POLL_SECONDS": "0.1",
    "WEBHOOKS_CONNECT_TIMEOUT": "2",
    "WEBHOOKS_READ_TIMEOUT": "3",
    "WEBHOOKS_LEASE_MARGIN_SECONDS": "1",
    "WEBHOOKS_BATCH_SIZE": "50",
    "WEBHOOKS_BLOCK_MS": "200",
    "WEBHOOKS_CLAIM_IDLE_MS": "2000",
    "WEBHOOKS_LOCK_POLL_SECONDS": "0.2",
}
TASKS = 5  # tasks the command stream changes in turn, so each has many events in order


@pytest.fixture(scope="module")
def chaos() -> Iterator[ChaosStack]:
    """A private stack whose relay, projector and `webhooks` process may be killed."""
    managed = {**MANAGED, "webhooks": ("webhooks", "run")}
    with chaos_stack(WEBHOOKS_ENV, managed=managed) as running:
        yield running


@dataclass
class Subscribed:
    """A receiver subscribed through the gateway, and where in the log it starts."""

    receiver: Receiver
    id: int
    start_seq: int


@pytest.fixture
def subscribed(chaos: ChaosStack) -> Iterator[Subscribed]:
    """A new receiver, subscribed to every event type (deleted afterwards)."""
    receiver = Receiver().start()
    headers = chaos.stack.login()
    made = chaos.stack.session.post(f"{chaos.stack.base_url}/webhooks", headers=headers,
                                    json={"url": receiver.url}, timeout=30)
    assert made.status_code == 201, made.text
    receiver.secrets.append(made.json()["secret"])
    start = chaos.scalar("webhooks", f"SELECT start_seq FROM subscriptions "
                                     f"WHERE id = {int(made.json()['id'])}")
    yield Subscribed(receiver, int(made.json()["id"]), start)
    chaos.stack.session.delete(f"{chaos.stack.base_url}/webhooks/{made.json()['id']}",
                               headers=headers, timeout=30)
    receiver.stop()


def events_after(chaos: ChaosStack, seq: int) -> dict[int, StoredEvent]:
    """The stored events after `seq`, by seq."""
    return {e.seq: e for e in stored_events(chaos) if e.seq > seq}


def arrived(receiver: Receiver, wanted: dict[int, StoredEvent]) -> bool:
    """Every wanted event was accepted by the receiver at least once."""
    return set(wanted) <= set(receiver.seqs())


def check_deliveries(receiver: Receiver, wanted: dict[int, StoredEvent]) -> list[Received]:
    """Each delivery verified and is a stored event, carrying its event id as webhook-id, and
    each task's events first arrived in order; return the deliveries of an event seen twice."""
    assert receiver.unverified == []
    with receiver.lock:
        received = list(receiver.received)
    assert {r.seq for r in received} == set(wanted)
    for delivery in received:
        assert delivery.webhook_id == wanted[delivery.seq].event_id, delivery
        assert delivery.event["event_id"] == wanted[delivery.seq].event_id
    firsts: dict[int | None, list[int]] = defaultdict(list)
    for delivery in received:
        task = firsts[wanted[delivery.seq].task_id]
        if delivery.seq not in task:
            task.append(delivery.seq)
    for task_id, seqs in firsts.items():
        assert seqs == sorted(seqs), f"task {task_id}: first arrivals {seqs}"
    seen: dict[int, int] = defaultdict(int)
    for delivery in received:
        seen[delivery.seq] += 1
    return [r for r in received if seen[r.seq] > 1]


class CommandStream:
    """Creates TASKS tasks, then changes them in turn through the gateway until stopped."""

    def __init__(self, chaos: ChaosStack) -> None:
        self.chaos = chaos
        self.headers = chaos.stack.login()
        self.tasks: list[int] = []
        self.sent = 0
        self.stop = threading.Event()

    def command(self) -> None:
        """One command, which must be accepted."""
        base, session = self.chaos.stack.base_url, self.chaos.stack.session
        if len(self.tasks) < TASKS:
            reply = session.post(f"{base}/task", headers=self.headers, timeout=30,
                                 json={"title": f"webhooked {len(self.tasks)}"})
            assert reply.status_code == 201, reply.text
            self.tasks.append(int(reply.json()["id"]))
        else:
            task = self.tasks[self.sent % TASKS]
            reply = session.put(f"{base}/task/{task}", headers=self.headers, timeout=30,
                                json={"title": f"change {self.sent}"})
            assert reply.status_code == 200, reply.text
        self.sent += 1

    def run_for(self, seconds: float, per_second: float = 8) -> None:
        """Send commands at about `per_second` for `seconds` (the pace of a client)."""
        for _ in range(int(seconds * per_second)):
            self.command()
            self.stop.wait(1 / per_second)


def metric(chaos: ChaosStack, name: str, **labels: str) -> float:
    """The sum of one metric's samples (with those labels) on the `webhooks` process."""
    port = chaos.env["WEBHOOKS_METRICS_PORT"]
    body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(sample.value for family in text_string_to_metric_families(body)
               for sample in family.samples
               if sample.name == name and labels.items() <= sample.labels.items())


def test_a_receiver_down_for_30_seconds_gets_every_event_in_order_per_task(
        chaos: ChaosStack, subscribed: Subscribed) -> None:
    receiver, commands = subscribed.receiver, CommandStream(chaos)
    commands.run_for(2)
    wait_for(lambda: len(receiver.received) >= TASKS, 30, what="the first deliveries")
    failures_before = metric(chaos, "taskstream_webhook_failures_total", reason="network")

    receiver.stop()
    commands.run_for(30)
    # Refused connections are counted, and the deliveries waiting for their retry show.
    assert metric(chaos, "taskstream_webhook_failures_total", reason="network") > \
        failures_before
    wait_for(lambda: metric(chaos, "taskstream_webhook_retry_queue_depth") > 0, 10,
             what="deliveries waiting for a retry in /metrics")
    receiver.start()

    wanted = events_after(chaos, subscribed.start_seq)
    assert len(wanted) >= commands.sent  # one event per command (and any transfer)
    wait_for(lambda: arrived(receiver, wanted), 90, interval=0.2, what="every event")
    check_deliveries(receiver, wanted)
    wait_for(lambda: metric(chaos, "taskstream_webhook_retry_queue_depth") == 0 and
             metric(chaos, "taskstream_webhook_pending_deliveries") == 0, 30,
             what="the outbox empty in /metrics")
    assert metric(chaos, "taskstream_webhook_deliveries_total") >= len(wanted)
    assert metric(chaos, "taskstream_webhook_delivery_lag_seconds_count") >= len(wanted)
    assert metric(chaos, "taskstream_webhook_stream_lag_events") == 0


def test_relay_projector_and_webhooks_killed_mid_delivery_lose_nothing(
        chaos: ChaosStack, subscribed: Subscribed) -> None:
    receiver = subscribed.receiver
    holding, release = threading.Event(), threading.Event()
    held: list[int] = []

    def answer(delivery: Received) -> int:
        if holding.is_set():  # keep the request open: the sender is mid-delivery
            held.append(delivery.seq)
            release.wait(60)
        return 200

    receiver.answer = answer
    backlog(chaos, 300)
    wait_for(lambda: len(receiver.received) >= 20, 60, what="deliveries under way")
    holding.set()
    wait_for(lambda: held, 30, what="a delivery held open by the receiver")
    for name in ("webhooks", "relay", "projector"):
        chaos.kill(name)
    holding.clear()
    release.set()  # the receiver takes what it held: the dead sender never hears of it
    backlog(chaos, 200)  # committed while the relay is down
    for name in ("relay", "projector", "webhooks"):
        chaos.start(name)

    wanted = events_after(chaos, subscribed.start_seq)
    wait_for(lambda: arrived(receiver, wanted), 120, interval=0.2, what="every event")
    twice = check_deliveries(receiver, wanted)
    assert set(held) <= {r.seq for r in twice}  # sent again after the kill, same webhook-id
    found = exactly_once_everywhere(chaos)
    assert found.problems() == [] and found.lost == 0 and found.duplicated == 0


def test_sigterm_lets_the_deliveries_in_hand_finish(chaos: ChaosStack,
                                                    subscribed: Subscribed) -> None:
    receiver, webhooks = subscribed.receiver, chaos.processes["webhooks"]
    release = threading.Event()
    held: list[int] = []

    def answer(delivery: Received) -> int:
        held.append(delivery.seq)
        release.wait(60)
        return 200

    receiver.answer = answer
    CommandStream(chaos).run_for(1, per_second=TASKS)
    wait_for(lambda: held, 30, what="a delivery held open by the receiver")
    assert webhooks.process is not None
    webhooks.process.terminate()
    wait_for(lambda: "Webhooks received signal" in webhooks.logs(), 30,
             what="the process to hear SIGTERM")
    release.set()
    assert webhooks.process.wait(30) == 0, webhooks.logs()[-3000:]
    recorded = chaos.scalar("webhooks", f"SELECT count(*) FROM deliveries WHERE status = "
                                        f"'delivered' AND seq IN ({','.join(map(str, held))})")
    assert recorded == len(set(held))  # recorded before stopping: never sent again
    webhooks.start()
    wanted = events_after(chaos, subscribed.start_seq)
    wait_for(lambda: arrived(receiver, wanted), 60, interval=0.2, what="every event")
    assert check_deliveries(receiver, wanted) == []
