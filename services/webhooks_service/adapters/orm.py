"""SQLAlchemy models of the webhooks database: subscriptions, the outbox, replays, checkpoint.

The outbox is three tables. `webhook_events` holds each event a subscription wants, once;
`deliveries` one row per event and subscription (its status, attempts and last answer);
`delivery_queues` one row per subscription and task with deliveries pending: the row a sender
leases, so that a task's deliveries to a subscription go one at a time, in order.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.webhooks_service.service_layer.attempts import PENDING


class Base(DeclarativeBase):
    """Declarative base of the webhooks database."""


class Subscription(Base):
    """Where events go, which ones, and the secrets that sign them."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    event_types: Mapped[list[str] | None] = mapped_column(ARRAY(String(64)))  # None: all
    secret: Mapped[str] = mapped_column(Text)
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True))
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    paused_reason: Mapped[str | None] = mapped_column(Text)
    # Events up to this seq were in the log before the subscription (they can be replayed).
    start_seq: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                    server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                    server_default=func.now())


class WebhookEvent(Base):
    """An event some subscription wants, as the stream carried it (the body that is sent)."""

    __tablename__ = "webhook_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[int | None] = mapped_column(BigInteger)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    payload: Mapped[str] = mapped_column(Text)


class Delivery(Base):
    """One event for one subscription: pending, delivered or failed (given up)."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("subscriptions.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger, ForeignKey("webhook_events.seq"))
    task_key: Mapped[int] = mapped_column(BigInteger)  # the task id, 0 for other events
    status: Mapped[str] = mapped_column(String(16), default=PENDING, server_default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    first_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                    server_default=func.now())

    __table_args__ = (
        # The head of a queue: its oldest pending delivery.
        Index("ix_deliveries_queue", "subscription_id", "task_key", "id",
              postgresql_where=text("status = 'pending'")),
        Index("ix_deliveries_subscription", "subscription_id", "id"),
        Index("ix_deliveries_seq", "seq"),
    )


class DeliveryQueue(Base):
    """The pending deliveries of one task to one subscription, sent one at a time.

    A sender leases the row (`lease`, and `next_attempt_at` moved past the longest request),
    sends the queue's oldest pending delivery, then records the answer and frees the row.
    """

    __tablename__ = "delivery_queues"

    subscription_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True)
    task_key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    pending: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    lease: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class Replay(Base):
    """A request to deliver again, to one subscription, the events `from_seq + 1..through_seq`."""

    __tablename__ = "replays"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("subscriptions.id", ondelete="CASCADE"))
    from_seq: Mapped[int] = mapped_column(BigInteger)
    through_seq: Mapped[int] = mapped_column(BigInteger)
    next_seq: Mapped[int] = mapped_column(BigInteger)  # the last seq already queued
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                    server_default=func.now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Checkpoint(Base):
    """The last event seq the `webhooks` process has queued, committed with the queueing."""

    __tablename__ = "consumer_checkpoints"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                    server_default=func.now())


metadata = Base.metadata
