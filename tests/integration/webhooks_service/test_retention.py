"""The outbox's retention: finished deliveries past it are deleted with the events nobody
needs any more; pending ones, recent ones and an event a replay is queueing are kept."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import redis
from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.webhooks_service.adapters.outbox import (
    QUEUE_DELIVERIES,
    STORE_EVENTS,
    outbox_transaction,
)
from services.webhooks_service.adapters.retention import prune_outbox
from services.webhooks_service.entrypoints.webhooks import build_process
from services.webhooks_service.service_layer.retention import Retention
from shared.events import encode
from tests.integration.webhooks_service.delivery_kit import Kit, settings

WEEK = dt.timedelta(days=7)
URL = "http://127.0.0.1:9/hook"


def queue(engine: Engine, kit: Kit, count: int) -> list[str]:
    """`count` TaskCreated events queued for every subscription; their payloads."""
    payloads = [encode(kit.events.created(task)) for task in range(1, count + 1)]
    with outbox_transaction(engine)() as outbox:
        outbox.queue(payloads)
    return payloads


def finish(kit: Kit, seqs: list[int], status: str, days_ago: float) -> None:
    """Mark the deliveries of these events finished that long ago."""
    with kit.engine.begin() as connection:
        connection.execute(text(
            "UPDATE deliveries SET status = :status, attempts = 1, "
            "last_attempt_at = now() - make_interval(days => :days), "
            "delivered_at = CASE WHEN :status = 'delivered' "
            "THEN now() - make_interval(days => :days) END WHERE seq = ANY(:seqs)"),
            {"status": status, "days": days_ago, "seqs": seqs})


def left(kit: Kit) -> tuple[list[int], list[int]]:
    """The seqs of the deliveries left (one per subscription) and of the events left."""
    deliveries = [row[0] for row in kit.rows("SELECT seq FROM deliveries ORDER BY seq, id")]
    events = [row[0] for row in kit.rows("SELECT seq FROM webhook_events ORDER BY seq")]
    return deliveries, events


def test_finished_deliveries_past_the_retention_go_with_the_events_nobody_needs(
        kit: Kit, engine: Engine) -> None:
    kit.subscribe(URL)
    queue(engine, kit, 6)
    finish(kit, [1, 2], "delivered", 8)  # past the retention
    finish(kit, [3], "failed", 8)  # given up, past the retention
    finish(kit, [4], "delivered", 6)  # recent
    # 5 and 6 pending, whatever their age
    with engine.begin() as connection:
        connection.execute(text("UPDATE deliveries SET created_at = now() - interval '30 days' "
                                "WHERE seq IN (5, 6)"))

    retention = Retention(lambda batch: prune_outbox(engine, WEEK, batch), batch=2)
    assert retention.sweep() == (3, 3)  # in batches of 2: 2, then 1
    assert left(kit) == ([4, 5, 6], [4, 5, 6])
    assert retention.sweep() == (0, 0)


def test_an_event_still_wanted_by_another_subscription_is_kept(kit: Kit,
                                                                engine: Engine) -> None:
    first, _ = kit.subscribe(URL)
    kit.subscribe(URL)
    queue(engine, kit, 1)
    with engine.begin() as connection:  # only the first subscription's delivery is done
        connection.execute(text(
            "UPDATE deliveries SET status = 'delivered', delivered_at = now() - interval '8 days'"
            " WHERE subscription_id = :first"), {"first": first})

    assert prune_outbox(engine, WEEK, 100) == (1, 0)
    assert left(kit) == ([1], [1])


def test_an_event_a_replay_is_queueing_again_is_not_deleted_under_it(
        kit: Kit, engine: Engine) -> None:
    subscription, _ = kit.subscribe(URL)
    payloads = queue(engine, kit, 1)
    finish(kit, [1], "delivered", 8)
    params = {"events": f"[{payloads[0]}]", "replay_for": subscription}
    pruned: list[tuple[int, int]] = []
    with engine.begin() as replay:  # a replay queues event 1 again, in two statements
        replay.execute(STORE_EVENTS, params)
        # Retention runs between them, in a transaction of its own.
        sweeper = threading.Thread(target=lambda: pruned.append(prune_outbox(engine, WEEK, 10)))
        sweeper.start()
        sweeper.join(timeout=30)
        assert not sweeper.is_alive(), "retention waited for the replay instead of skipping"
        assert int(replay.execute(QUEUE_DELIVERIES, params).scalar_one()) == 1
    assert pruned == [(1, 0)]  # the old delivery went, the event stayed for the new one
    assert left(kit) == ([1], [1])
    assert kit.rows("SELECT status FROM deliveries") == [("pending",)]


def test_retention_zero_keeps_every_delivery(
        monkeypatch: pytest.MonkeyPatch, webhooks_url: str, redis_url: str, namespace: str,
        engine: Engine, redis_client: redis.Redis) -> None:
    kept = build_process(settings(monkeypatch, webhooks_url, redis_url, namespace,
                                  WEBHOOKS_RETENTION_DAYS="0"), engine, redis_client)
    pruning = build_process(settings(monkeypatch, webhooks_url, redis_url, namespace,
                                     WEBHOOKS_RETENTION_DAYS="7"), engine, redis_client)
    assert "retention" not in kept.loops() and "retention" in pruning.loops()
