"""Celery worker and beat of the task service: the daily transfer, and key clean-up.

`celery --app services.task_service.entrypoints.celery_app worker|beat` finds the module-level
`app`. Its configuration is read from the environment only when Celery first needs it, so
importing this module connects to nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import time, timedelta
from functools import cache
from typing import Any

from celery import Celery, shared_task
from celery.schedules import crontab
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from services.task_service.config import Settings, load_settings
from services.task_service.domain.model import Context
from services.task_service.entrypoints import celery_signals  # noqa: F401  (connects the signals)
from services.task_service.service_layer.tasks import utcnow
from services.task_service.service_layer.transfer import Schedule, run_schedule
from services.task_service.service_layer.unit_of_work import UnitOfWork
from shared.config import exit_on_config_error
from shared.db import DatabaseUnavailable
from shared.events import Actor

log = logging.getLogger("taskstream.worker")

TRANSFER_TASK = "taskstream.request_daily_transfer"
PURGE_KEYS_TASK = "taskstream.purge_idempotency_keys"
SCHEDULER = Actor(None, "scheduler", "system")


def redis_transport_options(settings: Settings) -> dict[str, Any]:
    """The Redis broker's options: keys inside the namespace, quick redelivery."""
    return {
        "global_keyprefix": f"{settings.common.namespace}:celery:",
        # A task taken by a worker that died before finishing it (acks_late) goes back
        # to the queue after this long; every task here is safe to run twice. Workers
        # look for such tasks every few seconds (kombu's default is every ~100 s).
        "visibility_timeout": settings.task_redelivery_seconds,
        "unacked_restore_interval": min(10, settings.task_redelivery_seconds),
        "unacked_restore_throttle": 1,
    }


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings: the broker (Redis inside the namespace, or RabbitMQ), the beat
    schedule, our own keys."""
    on_redis = settings.broker_url.startswith(("redis", "rediss"))
    return {
        "broker_url": settings.broker_url,
        # RabbitMQ gives an unacknowledged task back as soon as its worker's connection drops.
        "broker_transport_options": redis_transport_options(settings) if on_redis else {},
        "broker_connection_retry_on_startup": True,
        "task_ignore_result": True,
        "task_acks_late": True,
        "worker_prefetch_multiplier": 1,
        "timezone": settings.transfer_timezone,
        "enable_utc": True,
        "beat_schedule": {
            # Every check appends the scheduled transfer of any date whose run is due and
            # missing, so a run lost while Redis or the worker was down is made up at the
            # next check that gets through. A check that waited past the next one is dropped.
            "daily-transfer": {
                "task": TRANSFER_TASK, "schedule": settings.transfer_check_seconds,
                "options": {"expires": 2 * settings.transfer_check_seconds},
            },
            "purge-idempotency-keys": {"task": PURGE_KEYS_TASK, "schedule": crontab(minute=17)},
        },
        "taskstream_transfer_time": settings.transfer_time.isoformat("minutes"),
        "taskstream_database_url": settings.database_url,
        "taskstream_idempotency_ttl_hours": settings.idempotency_ttl_hours,
    }


class QuietTransferChecks(logging.Filter):
    """Leaves out Celery's routine lines about the transfer check, which runs every minute.

    The check logs the transfers it requests itself; warnings and errors still show.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but an INFO line naming the transfer task."""
        return record.levelno != logging.INFO or TRANSFER_TASK not in record.getMessage()


CHATTY_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.worker.request",
                  "celery.app.trace")


def quiet_transfer_checks() -> None:
    """Attach `QuietTransferChecks` to the Celery loggers that announce every task (once)."""
    for name in CHATTY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QuietTransferChecks) for f in logger.filters):
            logger.addFilter(QuietTransferChecks())


def create_celery(settings: Callable[[], Settings] = load_settings) -> Celery:
    """A Celery app whose configuration comes from `settings()` when first needed."""
    quiet_transfer_checks()
    celery = Celery("taskstream")
    celery.add_defaults(lambda: celery_config(settings_or_exit(settings)))
    return celery


def settings_or_exit(settings: Callable[[], Settings]) -> Settings:
    """The settings; a configuration error ends the worker or beat with one line."""
    with exit_on_config_error():
        return settings()


app = create_celery()


@cache
def _engine(url: str) -> Engine:
    # One small pool per worker process, made on first use (after the pool forks).
    return create_engine(url, pool_size=2, max_overflow=2, pool_pre_ping=True)


def _unit_of_work(conf: Any) -> UnitOfWork:
    ttl = timedelta(hours=int(conf["taskstream_idempotency_ttl_hours"]))
    return UnitOfWork(_engine(conf["taskstream_database_url"]), ttl)


@shared_task(name=TRANSFER_TASK, bind=True, autoretry_for=(DBAPIError, DatabaseUnavailable),
             retry_backoff=True, retry_backoff_max=300, max_retries=10)
def request_daily_transfer(self: Any) -> list[dict[str, str]]:
    """Append the scheduled `DailyTransferRequested` of each date whose run is due (if any)."""
    conf = self.app.conf
    schedule = Schedule(time.fromisoformat(conf["taskstream_transfer_time"]),
                        conf.timezone or "UTC")
    context = Context(SCHEDULER, correlation_id=self.request.id)
    made = run_schedule(_unit_of_work(conf), schedule, context)
    if not made:
        log.debug("Scheduled transfers are up to date")
    for requested in made:
        log.info("Scheduled transfer for %s requested (event %s)", requested.date,
                 requested.event_id)
    return [{"date": r.date.isoformat(), "event_id": r.event_id} for r in made]


@shared_task(name=PURGE_KEYS_TASK, bind=True, autoretry_for=(DBAPIError,), retry_backoff=True)
def purge_idempotency_keys(self: Any) -> int:
    """Delete idempotency keys past their retention period."""
    with _unit_of_work(self.app.conf) as uow:
        removed = uow.idempotency.purge_expired(utcnow())
        uow.commit()
    log.info("Purged %d expired idempotency keys", removed)
    return removed
