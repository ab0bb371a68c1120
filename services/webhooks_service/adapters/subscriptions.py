"""The subscriptions API's SQL: subscriptions, their deliveries and replays, one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar, cast

from sqlalchemy import Table, delete, func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine, RowMapping

from services.webhooks_service.adapters.orm import (
    Checkpoint,
    Delivery,
    Replay,
    Subscription,
    WebhookEvent,
)
from services.webhooks_service.service_layer.attempts import FAILED, PENDING
from services.webhooks_service.service_layer.fanout import CHECKPOINT_NAME
from services.webhooks_service.service_layer.views import (
    DeliveryView,
    Page,
    ReplayView,
    RotatedSecret,
    SubscriptionView,
)

subscriptions = cast(Table, Subscription.__table__)
deliveries = cast(Table, Delivery.__table__)
events = cast(Table, WebhookEvent.__table__)
replays = cast(Table, Replay.__table__)
checkpoints = cast(Table, Checkpoint.__table__)

SHOWN = [subscriptions.c[name] for name in (
    "id", "url", "description", "event_types", "paused", "paused_reason", "created_at",
    "updated_at")]
DELIVERY_COLUMNS = [
    deliveries.c.id, events.c.event_id, deliveries.c.seq, events.c.type.label("event_type"),
    events.c.task_id, deliveries.c.status, deliveries.c.attempts,
    deliveries.c.last_status_code, deliveries.c.last_error, deliveries.c.last_attempt_at,
    deliveries.c.delivered_at, deliveries.c.created_at]

# A delivery queued again goes back to the head of its task's queue (its id is older than
# the task's later events), so order per task holds; the retry window starts anew.
REQUEUE = text("""
    INSERT INTO delivery_queues (subscription_id, task_key, pending, next_attempt_at)
    VALUES (:subscription_id, :task_key, 1, now())
    ON CONFLICT (subscription_id, task_key)
    DO UPDATE SET pending = delivery_queues.pending + 1
""")

View = TypeVar("View")


class SqlSubscriptions:
    """The subscriptions, inside one open transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def checkpoint(self) -> int:
        """The last seq the `webhooks` process queued (waiting for a batch being committed)."""
        found = self.connection.execute(
            select(checkpoints.c.last_seq).where(checkpoints.c.name == CHECKPOINT_NAME)
            .with_for_update(read=True)).scalar()
        return int(found or 0)

    def add(self, values: Mapping[str, Any], secret: str, start_seq: int) -> SubscriptionView:
        """Insert a subscription."""
        row = self.connection.execute(
            insert(subscriptions).values(**values, secret=secret, start_seq=start_seq)
            .returning(*SHOWN)).mappings().one()
        return SubscriptionView(**row)

    def page(self, offset: int, limit: int) -> Page[SubscriptionView]:
        """Subscriptions by id."""
        rows = self.connection.execute(
            select(*SHOWN).order_by(subscriptions.c.id).offset(offset).limit(limit)).mappings()
        total = self.connection.execute(select(func.count()).select_from(subscriptions))
        return Page([SubscriptionView(**row) for row in rows], int(total.scalar_one()))

    def get(self, subscription_id: int) -> SubscriptionView | None:
        """One subscription."""
        row = self.connection.execute(
            select(*SHOWN).where(subscriptions.c.id == subscription_id)).mappings().first()
        return _view(SubscriptionView, row)

    def change(self, subscription_id: int, values: Mapping[str, Any]
               ) -> SubscriptionView | None:
        """Update a subscription's columns."""
        row = self.connection.execute(
            update(subscriptions).where(subscriptions.c.id == subscription_id)
            .values(**values, updated_at=func.now()).returning(*SHOWN)).mappings().first()
        return _view(SubscriptionView, row)

    def remove(self, subscription_id: int) -> bool:
        """Delete a subscription (its deliveries, queues and replays by cascade)."""
        result = self.connection.execute(
            delete(subscriptions).where(subscriptions.c.id == subscription_id))
        return result.rowcount > 0

    def rotate(self, subscription_id: int, secret: str, grace_seconds: int
               ) -> RotatedSecret | None:
        """Make `secret` the signing secret; the current one signs too until the grace ends."""
        expires = func.now() + func.make_interval(0, 0, 0, 0, 0, 0, grace_seconds)
        row = self.connection.execute(
            update(subscriptions).where(subscriptions.c.id == subscription_id)
            .values(previous_secret=subscriptions.c.secret, previous_secret_expires_at=expires,
                    secret=secret, updated_at=func.now())
            .returning(subscriptions.c.previous_secret_expires_at)).first()
        return None if row is None else RotatedSecret(secret, row[0])

    def deliveries(self, subscription_id: int, status: str | None, offset: int, limit: int
                   ) -> Page[DeliveryView]:
        """A subscription's deliveries (of one status, if given), newest first."""
        where = [deliveries.c.subscription_id == subscription_id]
        if status:
            where.append(deliveries.c.status == status)
        rows = self.connection.execute(
            select(*DELIVERY_COLUMNS).join(events, events.c.seq == deliveries.c.seq)
            .where(*where).order_by(deliveries.c.id.desc()).offset(offset).limit(limit))
        total = self.connection.execute(select(func.count()).select_from(deliveries)
                                        .where(*where)).scalar_one()
        return Page([DeliveryView(**row) for row in rows.mappings()], int(total))

    def delivery(self, subscription_id: int, delivery_id: int) -> DeliveryView | None:
        """One delivery of a subscription."""
        row = self.connection.execute(
            select(*DELIVERY_COLUMNS).join(events, events.c.seq == deliveries.c.seq)
            .where(deliveries.c.subscription_id == subscription_id,
                   deliveries.c.id == delivery_id)).mappings().first()
        return _view(DeliveryView, row)

    def resend(self, subscription_id: int, delivery_id: int) -> DeliveryView:
        """Make a failed delivery pending again, with a fresh retry window, and queue it."""
        task_key = self.connection.execute(
            update(deliveries).where(deliveries.c.id == delivery_id,
                                     deliveries.c.status == FAILED)
            .values(status=PENDING, attempts=0, first_attempt_at=None)
            .returning(deliveries.c.task_key)).scalar_one()
        self.connection.execute(REQUEUE, {"subscription_id": subscription_id,
                                          "task_key": task_key})
        found = self.delivery(subscription_id, delivery_id)
        assert found is not None  # updated just now, in this transaction
        return found

    def add_replay(self, subscription_id: int, from_seq: int, through_seq: int) -> ReplayView:
        """Record a replay of `from_seq + 1..through_seq` (finished at once when empty)."""
        done = from_seq >= through_seq
        row = self.connection.execute(
            insert(replays).values(
                subscription_id=subscription_id, from_seq=from_seq, through_seq=through_seq,
                next_seq=through_seq if done else from_seq,
                finished_at=func.now() if done else None)
            .returning(*replays.c)).mappings().one()
        return ReplayView(**row)


def _view(kind: Callable[..., View], row: RowMapping | None) -> View | None:
    """The view of a row, if there was one."""
    return None if row is None else kind(**row)


def sql_transaction(engine: Engine) -> Callable[[], AbstractContextManager[SqlSubscriptions]]:
    """A unit-of-work factory: each call opens one transaction, committed on a clean exit."""

    @contextmanager
    def transaction() -> Iterator[SqlSubscriptions]:
        with engine.begin() as connection:
            yield SqlSubscriptions(connection)

    return transaction
