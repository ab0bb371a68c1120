"""Deliveries to a real receiver on loopback, which checks each signature with the Standard
Webhooks reference library: once each, in order per task, retried, given up, refused."""

from __future__ import annotations

import itertools
import json

import pytest
import redis
from sqlalchemy.engine import Engine

from services.webhooks_service.adapters.subscriptions import sql_transaction
from services.webhooks_service.config import RetryPolicy
from services.webhooks_service.service_layer import subscriptions as webhooks
from shared.events import encode
from testbed.polling import wait_for
from testbed.receiver import Receiver
from tests.integration.webhooks_service.delivery_kit import Kit, running, settings


def test_every_event_arrives_once_signed_in_order(kit: Kit, receiver: Receiver,
                                                  process: None) -> None:
    _, secret = kit.subscribe(receiver.url)
    receiver.secrets.append(secret)
    sent = [kit.events.created(task) for task in (1, 2)]
    sent += [kit.events.status(task, "active", "in_progress") for task in (1, 2)]
    sent.append(kit.events.transfer())
    kit.bus.publish(sent)
    wait_for(lambda: len(receiver.received) == len(sent), what="every delivery")
    assert receiver.unverified == []
    assert sorted(receiver.seqs()) == [e.seq for e in sent]
    by_id = {r.webhook_id: r for r in receiver.received}
    for event in sent:  # webhook-id is the event id; the body is the envelope as published
        assert by_id[event.event_id].event == json.loads(encode(event))
    for task in (1, 2):
        arrived = [r.seq for r in receiver.received if r.event["task_id"] == task]
        assert arrived == sorted(arrived)
    wait_for(lambda: kit.rows("SELECT count(*) FROM deliveries WHERE status = 'delivered'")
             == [(len(sent),)], what="every delivery recorded")


def test_a_subscription_gets_only_its_event_types(kit: Kit, receiver: Receiver,
                                                  process: None) -> None:
    _, secret = kit.subscribe(receiver.url, event_types=["TaskStatusChanged"])
    receiver.secrets.append(secret)
    kit.bus.publish([kit.events.created(1), kit.events.status(1, "active", "completed")])
    wait_for(lambda: receiver.received, what="a delivery")
    kit.bus.publish([kit.events.created(2), kit.events.status(2, "active", "completed")])
    wait_for(lambda: len(receiver.received) == 2, what="the second one")
    assert [r.event["type"] for r in receiver.received] == ["TaskStatusChanged"] * 2


def test_events_with_no_subscription_are_passed_over_and_later_ones_queued(
        kit: Kit, receiver: Receiver, process: None) -> None:
    before = [kit.events.created(1), kit.events.created(2)]
    kit.bus.publish(before)
    wait_for(lambda: kit.rows("SELECT last_seq FROM consumer_checkpoints "
                              "WHERE name = 'webhooks'") == [(before[-1].seq,)],
             what="the fan-out past the events no one wanted")
    assert kit.rows("SELECT count(*) FROM webhook_events") == [(0,)]
    assert kit.rows("SELECT count(*) FROM deliveries") == [(0,)]
    _, secret = kit.subscribe(receiver.url)
    receiver.secrets.append(secret)
    after = kit.events.created(3)
    kit.bus.publish([after])
    wait_for(lambda: receiver.received, what="the delivery of the later event")
    assert receiver.seqs() == [after.seq]
    assert kit.rows("SELECT seq FROM webhook_events") == [(after.seq,)]


def test_a_failing_task_waits_while_other_tasks_go_on(kit: Kit, receiver: Receiver,
                                                      process: None) -> None:
    _, secret = kit.subscribe(receiver.url)
    receiver.secrets.append(secret)
    refused = {"open": True}
    receiver.answer = lambda r: 500 if r.event["task_id"] == 1 and refused["open"] else 200
    first = [kit.events.created(1), kit.events.created(2)]
    kit.bus.publish([*first, kit.events.status(1, "active", "completed"),
                     kit.events.status(2, "active", "completed")])
    wait_for(lambda: len(receiver.received) == 2, what="task 2's events")
    assert [r.event["task_id"] for r in receiver.received] == [2, 2]
    wait_for(lambda: len(receiver.attempts) >= 5, what="task 1's retries")
    task_one = {r.seq for r in receiver.attempts if r.event["task_id"] == 1}
    assert task_one == {first[0].seq}  # its later event is not sent before the failing one
    refused["open"] = False
    wait_for(lambda: len(receiver.received) == 4, what="task 1 once the receiver takes it")
    assert [r.seq for r in receiver.received if r.event["task_id"] == 1] == [1, 3]


def test_retries_are_spaced_out_exponentially(kit: Kit, receiver: Receiver,
                                              process: None) -> None:
    _, secret = kit.subscribe(receiver.url)
    receiver.secrets.append(secret)
    receiver.answer = lambda _r: 500
    kit.bus.publish([kit.events.created(1)])
    wait_for(lambda: len(receiver.attempts) >= 5, timeout=30, what="five attempts")
    times = [r.at for r in receiver.attempts[:5]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    policy = RetryPolicy(base_seconds=0.2, max_delay_seconds=1)
    least = [0.5 * min(policy.max_delay_seconds, policy.base_seconds * 2 ** n)
             for n in range(4)]  # the jitter draws each delay from 50-100 % of its step
    assert all(gap >= low for gap, low in zip(gaps, least, strict=True)), (gaps, least)
    assert len({r.webhook_id for r in receiver.attempts}) == 1  # every retry: the same id


def test_a_delivery_failing_all_window_long_is_given_up_and_pauses_its_webhook(
        kit: Kit, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, webhooks_url: str,
        redis_url: str, namespace: str, engine: Engine, redis_client: redis.Redis) -> None:
    subscription, secret = kit.subscribe(receiver.url)
    receiver.secrets.append(secret)
    receiver.answer = lambda _r: 503
    found = settings(monkeypatch, webhooks_url, redis_url, namespace,
                     WEBHOOKS_RETRY_WINDOW_SECONDS="1")
    with running(found, engine, redis_client):
        kit.bus.publish([kit.events.created(1), kit.events.created(2)])
        transaction = sql_transaction(engine)
        wait_for(lambda: webhooks.get(transaction, subscription).paused, timeout=20,
                 what="the webhook paused")
        # The other task's attempt may still be in flight: it is recorded (given up, or
        # pending) before the failed ones are read, or it would be missed by the re-send.
        wait_for(lambda: kit.rows("SELECT count(*) FROM delivery_queues "
                                  "WHERE lease IS NOT NULL") == [(0,)],
                 what="no attempt in flight")
        shown = webhooks.get(transaction, subscription)
        assert shown.paused_reason and "failed" in shown.paused_reason
        assert "HTTP 503" in shown.paused_reason
        failed = webhooks.deliveries(transaction, subscription, "failed", 1, 20).items
        assert failed and {d.last_status_code for d in failed} == {503}
        assert all(d.attempts >= 2 for d in failed)
        receiver.answer = lambda _r: 200
        for delivery in failed:
            webhooks.resend(transaction, subscription, delivery.id)
        webhooks.update(transaction, webhooks.TargetRules(), subscription, {"paused": False})
        wait_for(lambda: {r.seq for r in receiver.received} == {1, 2}, timeout=20,
                 what="the re-sent deliveries")


def test_a_target_resolving_to_a_private_address_is_refused(
        kit: Kit, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, webhooks_url: str,
        redis_url: str, namespace: str, engine: Engine, redis_client: redis.Redis) -> None:
    """`localhost` is a name: it passes when saved, and is refused when it resolves."""
    subscription, secret = kit.subscribe(f"http://localhost:{receiver.port}/hook")
    receiver.secrets.append(secret)
    found = settings(monkeypatch, webhooks_url, redis_url, namespace,
                     WEBHOOKS_ALLOW_PRIVATE="false")
    with running(found, engine, redis_client):
        kit.bus.publish([kit.events.created(1)])
        transaction = sql_transaction(engine)

        def refused() -> str | None:
            items = webhooks.deliveries(transaction, subscription, None, 1, 5).items
            return items[0].last_error if items and items[0].attempts else None

        error = wait_for(refused, what="a refused attempt")
    assert error.startswith("refused: ") and "is loopback" in error
    assert receiver.attempts == [] and receiver.unverified == []


def test_a_rotated_secret_and_the_previous_one_both_verify(kit: Kit, receiver: Receiver,
                                                           engine: Engine,
                                                           process: None) -> None:
    subscription, old = kit.subscribe(receiver.url)
    new = webhooks.rotate_secret(sql_transaction(engine), subscription, 3600).secret
    receiver.secrets.append(new)
    kit.bus.publish([kit.events.created(1)])
    wait_for(lambda: receiver.received, what="a delivery verified by the new secret")
    receiver.secrets[:] = [old]
    kit.bus.publish([kit.events.created(2)])
    wait_for(lambda: len(receiver.received) == 2, what="one verified by the old secret")
    assert [r.signatures for r in receiver.received] == [2, 2]
    assert receiver.unverified == []


def test_replay_delivers_again_exactly_the_events_after_a_position(
        kit: Kit, receiver: Receiver, engine: Engine, process: None) -> None:
    subscription, secret = kit.subscribe(receiver.url, event_types=["TaskCreated"])
    receiver.secrets.append(secret)
    sent = [kit.events.created(task) for task in range(1, 7)]
    kit.bus.publish([*sent, kit.events.status(6, "active", "completed")])
    wait_for(lambda: len(receiver.received) == 6, what="the first deliveries")
    made = webhooks.replay(sql_transaction(engine), subscription, from_seq=3)
    assert (made.from_seq, made.through_seq) == (3, 7)
    wait_for(lambda: len(receiver.received) == 9, what="the replayed deliveries")
    again = sorted(receiver.received[6:], key=lambda r: r.seq)  # three tasks: any order
    assert [r.seq for r in again] == [4, 5, 6]
    assert [r.webhook_id for r in again] == [e.event_id for e in sent[3:]]


def test_replay_reads_what_the_stream_lost_back_from_the_publisher(
        kit: Kit, receiver: Receiver, engine: Engine, redis_client: redis.Redis,
        process: None) -> None:
    subscription, secret = kit.subscribe(receiver.url)
    receiver.secrets.append(secret)
    sent = [kit.events.created(task) for task in range(1, 5)]
    kit.bus.publish(sent)
    wait_for(lambda: len(receiver.received) == 4, what="the first deliveries")
    redis_client.xtrim(kit.bus.stream, minid="4-0")  # entries 1..3 trimmed away
    webhooks.replay(sql_transaction(engine), subscription, from_seq=1)

    def publisher_answers() -> bool:  # what the relay does with a request, from its store
        for first, last in kit.bus.backfill_requests(10):
            kit.bus.offer_backfill([(e.seq, encode(e)) for e in sent if first <= e.seq <= last])
        return len(receiver.received) == 7

    wait_for(publisher_answers, what="the replay through the backfill")
    assert sorted(r.seq for r in receiver.received[4:]) == [2, 3, 4]  # three tasks
